//! QR codes for TOTP enrolment as `data:image/png;base64,…` URLs.
//!
//! The settings form shows one for every identity without TOTP, so it is rendered on every
//! settings flow creation; profiling showed it as the largest user-space cost of creating a
//! settings flow. The picture is what Kratos sends for its `totp_qr` node: 256 × 256 pixels
//! (the size the node declares), a whole number of pixels per module, centred; here with the
//! standard's 4-module quiet zone inside those pixels (4 px per module for a typical
//! `otpauth://` URL). It is written straight into a 1-bit PNG (each distinct row built once,
//! the Up filter, fast deflate). A form rebuilt for the same secret (after a submit of another
//! section) reuses the image it already shows (`methods/totp/mod.rs`), so nothing here needs
//! to remember renderings (and no enrolment secret is kept in process memory).
//!
//! Encoding is `fast_qr`'s, at about a third of the time `qrcodegen` took (95 µs instead of
//! 270 µs for a typical `otpauth://` URL; `qrcode` took 1.2 ms). It scores all eight masks with
//! the standard's penalty rules and keeps the best (its column rules read the matrix before
//! masking, so its pick can differ from another encoder's; every mask gives a valid symbol).
//! That scoring is most of the cost and still runs when a mask is forced, so forcing one saves
//! nothing (measured). It is the largest single cost of creating a settings flow.

use base64::Engine as _;
use fast_qr::{ECL, QRBuilder, QRCode};

/// Width and height of the picture, in pixels.
const SIDE: usize = 256;
/// Quiet zone, in modules.
const BORDER: usize = 4;

/// Render `text` as a PNG (1 bit per pixel, black on white).
pub fn png(text: &str) -> Option<Vec<u8>> {
    let qr = encode(text)?;
    let modules = qr.size;
    // The largest symbol (177 modules) with its quiet zone still fits at 1 px per module.
    let scale = (SIDE / (modules + 2 * BORDER)).max(1);
    let side = SIDE.max((modules + 2 * BORDER) * scale);
    let offset = (side - modules * scale) / 2;
    let row_bytes = side.div_ceil(8);
    let white = vec![0xFFu8; row_bytes];
    let mut row = white.clone();
    let mut data = Vec::with_capacity(row_bytes * side);
    for y in 0..side {
        let Some(py) = y.checked_sub(offset).filter(|py| *py < modules * scale) else {
            data.extend_from_slice(&white);
            continue;
        };
        if py % scale == 0 {
            let my = py / scale;
            let line = qr.data.get(my * modules..(my + 1) * modules)?;
            row.copy_from_slice(&white);
            for (mx, m) in line.iter().enumerate() {
                if m.value() {
                    let x0 = offset + mx * scale;
                    for x in x0..x0 + scale {
                        *row.get_mut(x / 8)? &= !(0x80u8 >> (x % 8));
                    }
                }
            }
        }
        data.extend_from_slice(&row);
    }
    let mut out = Vec::with_capacity(1024);
    let side = u32::try_from(side).ok()?;
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    // Each module row repeats `scale` times: the Up filter turns the repeats into zeros, which
    // deflate to nothing.
    enc.set_compression(png::Compression::Fast);
    enc.set_filter(png::Filter::Up);
    let mut w = enc.write_header().ok()?;
    w.write_image_data(&data).ok()?;
    w.finish().ok()?;
    Some(out)
}

/// Medium error correction, the mask chosen by penalty score (most of the cost, and what keeps
/// the symbol easy to scan).
fn encode(text: &str) -> Option<QRCode> {
    QRBuilder::new(text).ecl(ECL::M).build().ok()
}

/// `data:image/png;base64,…` of the QR code of `text`.
pub fn png_data_url(text: &str) -> Option<String> {
    Some(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png(text)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the pixel at (x, y) is white.
    type Pixels = Box<dyn Fn(usize, usize) -> bool>;

    /// Decode `bytes` (a 1-bit PNG) with a QR reader: its side, the symbol's text and format.
    fn read_back(bytes: Vec<u8>) -> (u32, Pixels, String, rqrr::MetaData) {
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().unwrap();
        let (w, h) = (r.info().width, r.info().height);
        assert_eq!(w, h, "square");
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let line = info.line_size;
        let px = move |x: usize, y: usize| buf[y * line + x / 8] & (0x80 >> (x % 8)) != 0;
        let side = w as usize;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| if px(x, y) { 255 } else { 0 });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        let (meta, content) = grids[0].decode().unwrap();
        (w, Box::new(px), content, meta)
    }

    #[test]
    fn renders_a_decodable_256px_png_like_kratos() {
        let text =
            "otpauth://totp/example.com:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=example.com";
        // Same symbol as the reference encoder at medium error correction.
        let modules = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).unwrap().size() as usize;
        let (side, px, content, meta) = read_back(png(text).unwrap());
        // 256 px, as the node declares (and as Kratos renders it).
        assert_eq!(side, 256);
        assert_eq!(content, text);
        assert_eq!(meta.ecc_level, 0, "medium error correction (format bits 00)");
        // A whole number of pixels per module with a 4-module quiet zone, centred.
        let scale = 256 / (modules + 8);
        assert!(scale >= 4, "a typical URL gets at least 4 px per module ({modules} modules)");
        let off = (256 - modules * scale) / 2;
        assert!(off >= 4 * scale, "quiet zone of 4 modules");
        assert!(px(0, 0) && px(off - 1, off - 1), "quiet zone is white");
        assert!(!px(off, off), "finder pattern corner is black");
        assert!(!px(off + scale - 1, off + scale - 1), "one module spans scale pixels");
        assert!(px(off + scale, off + scale), "finder pattern ring is white");
        assert!(px(255, 255), "far corner is white");
    }

    #[test]
    fn long_urls_still_fit_the_picture() {
        let text = format!(
            "otpauth://totp/{0}:{1}?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer={0}",
            "a-rather-long-issuer-name.example.com".repeat(4),
            "someone.with.a.long.address%40example.com".repeat(3)
        );
        let (side, _, content, _) = read_back(png(&text).unwrap());
        assert_eq!(side, 256);
        assert_eq!(content, text);
    }

    #[test]
    fn data_url_carries_the_png() {
        use base64::Engine as _;
        let text = "otpauth://totp/x:y?secret=AAAA";
        let url = png_data_url(text).unwrap();
        let b64 = url.strip_prefix("data:image/png;base64,").unwrap();
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).unwrap(), png(text).unwrap());
    }
}
