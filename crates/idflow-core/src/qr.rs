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
//! Encoding is `qrcodegen`'s with the mask forced (15 µs for a typical `otpauth://` URL). The
//! mask is chosen here, by the standard's penalty rules (ISO/IEC 18004 §7.8.3, as `qrcodegen`
//! scores them: a test checks the same pick on many inputs), computed on rows of bits: the
//! libraries score module by module, which was most of the cost of creating a settings flow
//! (`qrcodegen` 270 µs, `fast_qr` 125 µs; here 53 µs with the PNG, of which 21 µs pick the
//! mask).

use base64::Engine as _;
use qrcodegen::{Mask, QrCode, QrCodeEcc, QrSegment, Version};

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
            row.copy_from_slice(&white);
            for mx in 0..modules {
                if qr.dark(mx, my) {
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

/// A finished symbol: `size` × `size` modules, true = dark.
struct Symbol {
    size: usize,
    rows: Vec<u64>,
    /// Set for symbols too large for rows of bits (the library's own pick and modules).
    big: Option<QrCode>,
}

impl Symbol {
    fn dark(&self, x: usize, y: usize) -> bool {
        match &self.big {
            Some(q) => q.get_module(x as i32, y as i32),
            None => self.rows.get(y).is_some_and(|r| r >> x & 1 == 1),
        }
    }
}

/// Medium error correction, as Kratos's encoder uses; the mask with the lowest penalty.
fn encode(text: &str) -> Option<Symbol> {
    let segs = QrSegment::make_segments(text);
    let encode =
        |mask| QrCode::encode_segments_advanced(&segs, QrCodeEcc::Medium, Version::MIN, Version::MAX, mask, false).ok();
    let first = encode(Some(Mask::new(0)))?;
    let size = usize::try_from(first.size()).ok()?;
    if size > MAX_FAST {
        // Longer text: the library scores the masks itself.
        return Some(Symbol { size, rows: vec![], big: Some(encode(None)?) });
    }
    Some(Symbol { size, rows: best_mask(size, &bit_rows(&first)).1, big: None })
}

/// The modules of `q` as rows of bits.
fn bit_rows(q: &QrCode) -> Vec<u64> {
    (0..q.size()).map(|y| (0..q.size()).filter(|&x| q.get_module(x, y)).fold(0u64, |r, x| r | 1 << x)).collect()
}

/// Rows of bits (with 4 bits to spare) hold symbols up to this size: version 10, 213 bytes of
/// text (an `otpauth://` URL is typically 100 to 150).
const MAX_FAST: usize = 57;

/// Penalty weights of the standard.
const N1: u32 = 3;
const N2: u32 = 3;
const N3: u32 = 40;
const N4: u32 = 10;

/// Whether the mask `m` flips module (x, y).
fn mask_bit(m: u8, x: usize, y: usize) -> bool {
    match m {
        0 => (x + y).is_multiple_of(2),
        1 => y.is_multiple_of(2),
        2 => x.is_multiple_of(3),
        3 => (x + y).is_multiple_of(3),
        4 => (x / 3 + y / 2).is_multiple_of(2),
        5 => x * y % 2 + x * y % 3 == 0,
        6 => (x * y % 2 + x * y % 3).is_multiple_of(2),
        _ => ((x + y) % 2 + x * y % 3).is_multiple_of(2),
    }
}

/// The eight masks as lines of bits up to [`MAX_FAST`], computed once: `[m][y]` has bit x set
/// when mask m flips (x, y); `transposed`, `[m][x]` has bit y set.
fn mask_lines(transposed: bool) -> &'static [[u64; MAX_FAST]; 8] {
    static ROWS: std::sync::OnceLock<[[u64; MAX_FAST]; 8]> = std::sync::OnceLock::new();
    static COLS: std::sync::OnceLock<[[u64; MAX_FAST]; 8]> = std::sync::OnceLock::new();
    (if transposed { &COLS } else { &ROWS }).get_or_init(|| {
        let mut t = [[0u64; MAX_FAST]; 8];
        for (m, lines) in (0u8..).zip(t.iter_mut()) {
            for (line, bits) in lines.iter_mut().enumerate() {
                *bits = (0..MAX_FAST)
                    .filter(|&bit| if transposed { mask_bit(m, line, bit) } else { mask_bit(m, bit, line) })
                    .fold(0, |bits, bit| bits | 1 << bit);
            }
        }
        t
    })
}

/// Modules as rows of bits, row `y` in `rows[y]`, or transposed (column `x` in `rows[x]`).
struct Bits {
    rows: Vec<u64>,
    transposed: bool,
}

impl Bits {
    fn put(&mut self, x: usize, y: usize, dark: bool) {
        let (line, bit) = if self.transposed { (x, y) } else { (y, x) };
        if let Some(r) = self.rows.get_mut(line).filter(|_| bit < 64) {
            *r = (*r & !(1 << bit)) | (u64::from(dark) << bit);
        }
    }
}

/// The function modules (finder, separator, timing, alignment, format and version areas) of a
/// symbol of `size` modules, as rows: masks never touch them.
fn function_modules(size: usize) -> Vec<u64> {
    let mut f = Bits { rows: vec![0; size], transposed: false };
    // Finder patterns with their separators and the format areas next to them.
    for i in 0..9 {
        for j in 0..9 {
            f.put(i, j, true);
        }
    }
    for i in 0..8 {
        for j in 0..9 {
            f.put(size - 8 + i, j, true);
            f.put(j, size - 8 + i, true);
        }
    }
    for i in 0..size {
        f.put(6, i, true);
        f.put(i, 6, true);
    }
    let version = (size - 17) / 4;
    if version >= 2 {
        let count = version / 7 + 2;
        let step = (version * 8 + count * 3 + 5) / (count * 4 - 4) * 2;
        let mut centres: Vec<usize> = (0..count - 1).map(|i| size - 7 - i * step).collect();
        centres.push(6);
        for (i, &cy) in centres.iter().enumerate() {
            for (j, &cx) in centres.iter().enumerate() {
                // None over a finder pattern (`centres` ends with 6, the top-left one).
                let last = count - 1;
                if (i, j) == (last, last) || (i, j) == (0, last) || (i, j) == (last, 0) {
                    continue;
                }
                for dy in 0..5 {
                    for dx in 0..5 {
                        f.put(cx + dx - 2, cy + dy - 2, true);
                    }
                }
            }
        }
    }
    if version >= 7 {
        for i in 0..18 {
            f.put(size - 11 + i % 3, i / 3, true);
            f.put(i / 3, size - 11 + i % 3, true);
        }
    }
    f.rows
}

/// Write the format bits of medium error correction and mask `m` (both copies).
fn put_format(b: &mut Bits, size: usize, m: u8) {
    let data = u32::from(m); // medium error correction is 00
    let mut rem = data;
    for _ in 0..10 {
        rem = (rem << 1) ^ ((rem >> 9) * 0x537);
    }
    let bits = (data << 10 | rem) ^ 0x5412;
    let bit = |i: usize| bits >> i & 1 == 1;
    for i in 0..6 {
        b.put(8, i, bit(i));
    }
    b.put(8, 7, bit(6));
    b.put(8, 8, bit(7));
    b.put(7, 8, bit(8));
    for i in 9..15 {
        b.put(14 - i, 8, bit(i));
    }
    for i in 0..8 {
        b.put(size - 1 - i, 8, bit(i));
    }
    for i in 8..15 {
        b.put(8, size - 15 + i, bit(i));
    }
    b.put(8, size - 8, true); // the dark module
}

/// The mask with the lowest penalty (the lowest-numbered on a tie) and the symbol's rows with
/// it, from the rows of the symbol with mask 0.
fn best_mask(size: usize, masked0: &[u64]) -> (u8, Vec<u64>) {
    let function = function_modules(size);
    let function_t = transpose(&function, size);
    let plain = masked(size, masked0, &function, 0, false);
    let plain_t = transpose(&plain, size);
    let mut best: (u32, u8, Vec<u64>) = (u32::MAX, 0, vec![]);
    for m in 0..8u8 {
        let rows = masked(size, &plain, &function, m, false);
        let cols = masked(size, &plain_t, &function_t, m, true);
        let score = penalty(&rows, &cols, size);
        if score < best.0 {
            best = (score, m, rows);
        }
    }
    (best.1, best.2)
}

/// `lines` (rows, or columns when `transposed`) with mask `m` applied to every module outside
/// `function` and the format bits of mask `m`. Masking twice with one mask unmasks.
fn masked(size: usize, lines: &[u64], function: &[u64], m: u8, transposed: bool) -> Vec<u64> {
    let pattern = mask_lines(transposed).get(usize::from(m)).map_or(&[][..], |p| &p[..]);
    let full = (1u64 << size) - 1;
    let mut b = Bits {
        rows: lines.iter().zip(function).zip(pattern).map(|((l, f), p)| l ^ (p & full & !f)).collect(),
        transposed,
    };
    put_format(&mut b, size, m);
    b.rows
}

/// `rows` (of `size` bits) transposed.
fn transpose(rows: &[u64], size: usize) -> Vec<u64> {
    let mut t = vec![0u64; size];
    for (y, r) in rows.iter().enumerate() {
        let mut bits = *r;
        while bits != 0 {
            let x = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(c) = t.get_mut(x) {
                *c |= 1 << y;
            }
        }
    }
    t
}

/// The standard's penalty score of a symbol (rules N1 to N4), from its rows and columns.
fn penalty(rows: &[u64], cols: &[u64], size: usize) -> u32 {
    let full: u64 = (1u64 << size) - 1;
    let mut score = 0;
    for &line in rows.iter().chain(cols) {
        score += runs_penalty(line, full) + finder_penalty(line, size) * N3;
    }
    // N2: 2 × 2 blocks of one colour.
    for pair in rows.windows(2) {
        let same = !(pair[0] ^ pair[1]) & full;
        let flat = !(pair[0] ^ (pair[0] >> 1));
        score += (same & (same >> 1) & flat & (full >> 1)).count_ones() * N2;
    }
    // N4: how far the share of dark modules is from half, in steps of 5 %.
    let dark: i64 = rows.iter().map(|r| i64::from(r.count_ones())).sum();
    let total = (size * size) as i64;
    let k = ((dark * 20 - total * 10).abs() + total - 1) / total - 1;
    score + u32::try_from(k).unwrap_or(0) * N4
}

/// N1 of one line: a run of 5 or more modules of one colour costs 3, and 1 more per module
/// beyond 5.
fn runs_penalty(line: u64, full: u64) -> u32 {
    let mut score = 0;
    for bits in [line & full, !line & full] {
        // A bit for every 5 modules of one colour in a row; a run of L >= 5 has L - 4 of them.
        let five = bits & bits >> 1 & bits >> 2 & bits >> 3 & bits >> 4;
        let runs = (five & !(five << 1)).count_ones();
        score += five.count_ones() - runs + runs * N1;
    }
    score
}

/// N3 of one line: dark-light-dark-dark-dark-light-dark (1:1:3:1:1, of any module width n)
/// with 4 n light modules on one side, outside the symbol counting as light.
fn finder_penalty(line: u64, size: usize) -> u32 {
    // Widths of 2 and more need a dark run of 6 or more with 2 or more light modules on both
    // sides: lines with such a start and such an end are counted run by run.
    let six = line & line >> 1 & line >> 2 & line >> 3 & line >> 4 & line >> 5;
    let (light1, light2) = (!(line << 1), !(line << 2)); // light 1 and 2 modules before
    if six & light1 & light2 != 0 && (six & !(line >> 6) & !(line >> 7)) != 0 {
        return finder_penalty_runs(line, size);
    }
    // Width 1: the 12-module windows 0 1 0 111 0 1 0000 and 0000 1 0 111 0 1 0 (from the
    // left), over the line with 4 light modules before it (bits beyond it are light already).
    let padded = line << 4;
    let dark = |i: u32| padded >> i;
    let light = |i: u32| !(padded >> i);
    let centre = |o: u32| dark(o) & light(o + 1) & dark(o + 2) & dark(o + 3) & dark(o + 4) & light(o + 5) & dark(o + 6);
    let light_after = light(0) & centre(1) & light(8) & light(9) & light(10) & light(11);
    let light_before = light(0) & light(1) & light(2) & light(3) & centre(4) & light(11);
    light_after.count_ones() + light_before.count_ones()
}

/// [`finder_penalty`] run by run, as `qrcodegen` counts it (any module width).
fn finder_penalty_runs(line: u64, size: usize) -> u32 {
    let border = size as u32;
    let mut history = [0u32; 7];
    let add = |history: &mut [u32; 7], mut len: u32| {
        if history[0] == 0 {
            len += border; // light outside the symbol, before it
        }
        let h = *history;
        *history = [len, h[0], h[1], h[2], h[3], h[4], h[5]];
    };
    let patterns = |h: &[u32; 7]| {
        let n = h[1];
        let core = n > 0 && h[2] == n && h[3] == n * 3 && h[4] == n && h[5] == n;
        u32::from(core && h[0] >= n * 4 && h[6] >= n) + u32::from(core && h[6] >= n * 4 && h[0] >= n)
    };
    let (mut count, mut colour, mut run, mut x) = (0, false, 0u32, 0usize);
    while x < size {
        let rest = line >> x;
        let here = rest & 1 == 1;
        let len = (if here { rest.trailing_ones() } else { rest.trailing_zeros() } as usize).min(size - x);
        if here == colour {
            run += len as u32;
        } else {
            add(&mut history, run);
            if !colour {
                count += patterns(&history);
            }
            (colour, run) = (here, len as u32);
        }
        x += len;
    }
    if colour {
        add(&mut history, run);
        run = 0;
    }
    add(&mut history, run + border); // light outside the symbol, after it
    count + patterns(&history)
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
        // Same symbol size as the reference encoder at medium error correction.
        let modules = reference(text, None).size() as usize;
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

    /// Texts of many lengths and kinds (byte, alphanumeric and numeric segments), versions 1
    /// to past the rows-of-bits limit.
    fn sample_texts() -> Vec<String> {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut texts = vec![];
        for len in (1..300).step_by(3).chain([600, 900, 1100, 1400]) {
            let alphabet: &[u8] = match len % 3 {
                0 => b"abcdefghijklmnopqrstuvwxyz0123456789%:/?&=.-ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                1 => b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:",
                _ => b"0123456789",
            };
            texts.push((0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char).collect());
        }
        texts.push(
            "otpauth://totp/example.com:alice%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=example.com"
                .into(),
        );
        texts
    }

    fn reference(text: &str, mask: Option<qrcodegen::Mask>) -> QrCode {
        let segs = QrSegment::make_segments(text);
        QrCode::encode_segments_advanced(&segs, QrCodeEcc::Medium, Version::MIN, Version::MAX, mask, false).unwrap()
    }

    #[test]
    fn every_mask_gives_the_reference_encoders_symbol() {
        for text in sample_texts().iter().step_by(7) {
            let first = reference(text, Some(Mask::new(0)));
            let size = first.size() as usize;
            if size > MAX_FAST {
                continue;
            }
            let function = function_modules(size);
            let function_t = transpose(&function, size);
            let plain = masked(size, &bit_rows(&first), &function, 0, false);
            for m in 0..8u8 {
                let want = bit_rows(&reference(text, Some(Mask::new(m))));
                assert_eq!(masked(size, &plain, &function, m, false), want, "mask {m}, {size} modules");
                let cols = masked(size, &transpose(&plain, size), &function_t, m, true);
                assert_eq!(cols, transpose(&want, size), "mask {m} by columns, {size} modules");
            }
        }
    }

    #[test]
    fn mask_choice_matches_the_reference_encoders_penalty_rules() {
        let mut picked = [0usize; 8];
        for text in sample_texts() {
            let want = reference(&text, None);
            let got = encode(&text).unwrap();
            assert_eq!(got.size as i32, want.size());
            if got.big.is_none() {
                picked[best_mask(got.size, &bit_rows(&reference(&text, Some(Mask::new(0))))).0 as usize] += 1;
            }
            for y in 0..want.size() {
                for x in 0..want.size() {
                    assert_eq!(got.dark(x as usize, y as usize), want.get_module(x, y), "{text:?}: module ({x}, {y})");
                }
            }
        }
        assert!(picked.iter().filter(|n| **n > 0).count() >= 6, "the samples exercise most masks: {picked:?}");
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
