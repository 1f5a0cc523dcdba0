//! QR codes for TOTP enrolment as `data:image/png;base64,…` URLs.
//!
//! The settings form shows one for every identity without TOTP, so it is rendered on every
//! settings flow creation and every form rebuild; profiling showed it as the largest user-space
//! cost of creating a settings flow. This renders the same picture as before (8 px per module,
//! a 4-module quiet zone) straight into a 1-bit PNG (one byte per module per row, rows
//! repeated, the Up filter, fast deflate: about half the bytes of the generic 8-bit image
//! path). A form rebuilt for the same secret (after a submit of another section) reuses the
//! image it already shows (`methods/totp/mod.rs`), so nothing here needs to remember renderings
//! (and no enrolment secret is kept in process memory).
//!
//! Encoding is `fast_qr`'s, at about a third of the time `qrcodegen` took (95 µs instead of
//! 270 µs for a typical `otpauth://` URL; `qrcode` took 1.2 ms). It scores all eight masks with
//! the standard's penalty rules and keeps the best (its column rules read the matrix before
//! masking, so its pick can differ from another encoder's; every mask gives a valid symbol).
//! That scoring is most of the cost and still runs when a mask is forced, so forcing one saves
//! nothing (measured). It is the largest single cost of creating a settings flow.

use base64::Engine as _;
use fast_qr::{ECL, QRBuilder, QRCode};

const SCALE: usize = 8;
const BORDER: usize = 4;

/// Render `text` as a PNG (1 bit per pixel, black on white).
pub fn png(text: &str) -> Option<Vec<u8>> {
    let qr = encode(text)?;
    let modules = qr.size;
    // 8 px per module: one module is exactly one byte of a 1-bit row.
    let row_bytes = modules + 2 * BORDER;
    let side = row_bytes * SCALE;
    let mut data = Vec::with_capacity(row_bytes * side);
    let white = vec![0xFFu8; row_bytes];
    let mut row = white.clone();
    for my in 0..row_bytes {
        let line = if my < BORDER || my >= BORDER + modules {
            &white
        } else {
            let y = my - BORDER;
            let line = qr.data.get(y * modules..(y + 1) * modules)?;
            for (b, m) in row.iter_mut().skip(BORDER).zip(line) {
                *b = if m.value() { 0x00 } else { 0xFF };
            }
            &row
        };
        for _ in 0..SCALE {
            data.extend_from_slice(line);
        }
    }
    let mut out = Vec::with_capacity(2048);
    let side = u32::try_from(side).ok()?;
    let mut enc = png::Encoder::new(&mut out, side, side);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::One);
    // Rows repeat 8 times: the Up filter turns the repeats into zeros, which deflate to nothing.
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

    #[test]
    fn renders_a_decodable_png_of_the_usual_size() {
        let text =
            "otpauth://totp/example.com:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=example.com";
        let bytes = png(text).unwrap();
        let dec = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut r = dec.read_info().unwrap();
        // Same symbol size as the reference encoder at medium error correction.
        let reference = qrcodegen::QrCode::encode_text(text, qrcodegen::QrCodeEcc::Medium).unwrap();
        let side = (reference.size() as u32 + 8) * 8;
        assert_eq!((r.info().width, r.info().height), (side, side));
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::One);
        let px = |x: usize, y: usize| buf[y * info.line_size + x / 8] & (0x80 >> (x % 8)) != 0;
        assert!(px(0, 0), "quiet zone is white");
        assert!(!px(4 * 8, 4 * 8), "finder pattern corner is black");
        assert!(px(4 * 8 + 8, 4 * 8 + 8), "finder pattern ring is white");
        // A QR reader gets the text back from the pixels.
        let side = side as usize;
        let mut img = rqrr::PreparedImage::prepare_from_greyscale(side, side, |x, y| if px(x, y) { 255 } else { 0 });
        let grids = img.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the picture");
        let (meta, content) = grids[0].decode().unwrap();
        assert_eq!(content, text);
        assert_eq!(meta.ecc_level, 0, "medium error correction (format bits 00)");
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
