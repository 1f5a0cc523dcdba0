//! `idflow-bench micro`: the cost of the pieces the profile pointed at, in isolation, so a
//! change to one of them can be measured before and after without the HTTP noise.
//!
//! - `totp_qr`: the TOTP enrolment QR code (what every settings form without TOTP renders),
//!   through idflow's settings-form code path (`Engine::totp_settings_nodes`) on a fresh flow.
//! - `get_identity`: one identity load from the store (what every authenticated request does).
//! - `authenticate`: session token → session + identity (the request extractor's work).

use idflow_core::model::{FlowKind, FlowType};
use std::time::Instant;

fn per_call_us(n: u32, t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e6 / f64::from(n.max(1))
}

pub async fn run(dsn: Option<String>, iterations: u32) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("idflow-micro-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let dsn = dsn.unwrap_or_else(|| format!("sqlite://{}/micro.db?mode=rwc", dir.display()));
    let engine = crate::seed::engine(&dsn, 4).await?;
    crate::seed::seed(engine.clone(), 0, 1, 1, true).await?;
    let identity = crate::seed::first_identity(&engine).await?;

    // The QR code on a fresh settings flow (new secret each time, as for a new flow).
    let n = iterations.max(1);
    let t = Instant::now();
    let mut bytes = 0usize;
    for _ in 0..n {
        let mut flow = engine.new_flow(
            FlowKind::Settings,
            FlowType::Api,
            "http://127.0.0.1/",
            std::time::Duration::from_secs(3600),
        )?;
        let nodes = engine.totp_settings_nodes(&mut flow, &identity);
        bytes += serde_json::to_string(&nodes)?.len();
    }
    println!(
        "totp_qr (settings TOTP nodes on a new flow): {:.1} µs per flow, {} bytes of nodes JSON",
        per_call_us(n, t),
        bytes / n as usize
    );

    let url = "otpauth://totp/127.0.0.1:bench-0123456789abcdef0123456789abcdef-1%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=127.0.0.1";
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(qrcodegen::QrCode::encode_text(url, qrcodegen::QrCodeEcc::Medium).ok());
    }
    println!(
        "  QR encoding with qrcodegen scoring the masks itself (the pick idflow's is tested against): {:.1} µs",
        per_call_us(n, t)
    );
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = idflow_core::qr::png(url).map(|p| p.len()).unwrap_or(0);
    }
    println!("  QR encoding + PNG (idflow_core::qr::png): {:.1} µs, {len} bytes", per_call_us(n, t));
    let t = Instant::now();
    for _ in 0..n {
        let tot = totp_rs::Totp::from_url_unchecked(url).ok();
        len = tot.and_then(|t| t.to_qr_png().ok()).map(|p| p.len()).unwrap_or(0);
    }
    println!("  QR encoding + PNG (totp-rs to_qr_png): {:.1} µs, {len} bytes", per_call_us(n, t));

    let t = Instant::now();
    for _ in 0..n {
        engine.store.get_identity(identity.id).await?;
    }
    println!("get_identity ({}): {:.1} µs per call", engine.store.backend(), per_call_us(n, t));

    let session = engine.new_session(&identity, "password", &Default::default());
    engine
        .store
        .commit(idflow_core::store::Commit { create_session: Some(&session.session), ..Default::default() })
        .await?;
    let t = Instant::now();
    for _ in 0..n {
        engine.authenticate(&session.token).await?;
    }
    println!("authenticate ({}): {:.1} µs per call", engine.store.backend(), per_call_us(n, t));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
