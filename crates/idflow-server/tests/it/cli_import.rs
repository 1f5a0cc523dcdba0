//! `idflow identities import` of many records: per-record errors named `record N: …` (N the
//! 0-based position in the file), `--stop-on-error`, a non-zero exit when any record failed,
//! and progress (count, rate, time left) on a terminal only — piped output stays quiet.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};
use std::process::{Command, Output};

fn idflow(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idflow"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("IDFLOW_LOG", "error").output().expect("run idflow")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Files {
    dir: TempDir,
    config: String,
}

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("idflow-import-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("cfg.yaml");
        std::fs::write(&config, "hashers:\n  argon2: { memory: 1024, iterations: 1, parallelism: 1 }\n").unwrap();
        Files { config: config.display().to_string(), dir: TempDir(dir) }
    }

    fn write(&self, name: &str, v: &Value) -> String {
        let p = self.dir.0.join(name);
        std::fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    }
}

fn good(email: &str) -> Value {
    json!({"traits": {"email": email}, "credentials": {"password": {"config": {"password": PASSWORD}}}})
}

/// Two good records around two bad ones (a trait the schema refuses, a body that is not an
/// identity).
fn mixed(emails: &[String; 2]) -> Value {
    json!([good(&emails[0]), {"traits": {"email": "not-an-email"}}, {"traitz": {}}, good(&emails[1])])
}

fn listed_emails(dsn: &str) -> Vec<String> {
    let o = idflow(&["identities", "list", "--database", dsn]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mut v: Vec<String> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["traits"]["email"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Piped: every bad record is reported by index, the rest is imported, the exit code says that
/// something failed, and stderr carries no progress line.
async fn cli_import_reports_bad_records_and_continues(db: Db) {
    let (dsn, _tmp) = fresh_dsn(db).await;
    let f = Files::new();
    let emails = [unique_email(), unique_email()];
    let file = f.write("mixed.json", &mixed(&emails));
    let o = idflow(&["identities", "import", &file, "--database", &dsn, "--config", &f.config]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("imported ")).count(), 2, "{out}");
    let records: Vec<&str> = err.lines().filter(|l| l.starts_with("record ")).collect();
    assert_eq!(records.len(), 2, "{err}");
    assert!(records[0].starts_with("record 1: ") && records[0].contains("email"), "{err}");
    assert!(records[1].starts_with("record 2: "), "{err}");
    assert!(err.contains("2 of 4 records could not be imported (2 imported)"), "{err}");
    // Quiet when piped: no progress line, no terminal control characters.
    assert!(!err.contains('\r') && !err.contains('\u{1b}'), "{err:?}");
    assert!(!err.contains("/s") && !err.contains("left"), "{err}");
    let mut want = emails.to_vec();
    want.sort();
    assert_eq!(listed_emails(&dsn), want);

    // A file of good records only: success, nothing on stderr.
    let more = [unique_email(), unique_email(), unique_email()];
    let file = f.write("good.json", &json!(more.iter().map(|e| good(e)).collect::<Vec<_>>()));
    let o = idflow(&["identities", "import", &file, "--database", &dsn, "--config", &f.config]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stderr), "");
    assert_eq!(text(&o.stdout).lines().count(), 3);
    assert_eq!(listed_emails(&dsn).len(), 5);
}
both_dbs!(cli_import_reports_bad_records_and_continues);

/// `--stop-on-error`: the first bad record ends the import; what came before stays imported.
async fn cli_import_stop_on_error(db: Db) {
    let (dsn, _tmp) = fresh_dsn(db).await;
    let f = Files::new();
    let emails = [unique_email(), unique_email()];
    let file = f.write("mixed.json", &mixed(&emails));
    let o = idflow(&["identities", "import", &file, "--stop-on-error", "--database", &dsn, "--config", &f.config]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert_eq!(out.lines().filter(|l| l.starts_with("imported ")).count(), 1, "{out}");
    assert!(err.contains("record 1: "), "{err}");
    assert!(!err.contains("record 2"), "{err}");
    assert!(err.contains("stopped at record 1 (--stop-on-error): 1 imported, 2 not attempted"), "{err}");
    assert_eq!(listed_emails(&dsn), vec![emails[0].clone()]);
}
both_dbs!(cli_import_stop_on_error);

/// On a terminal (a pseudo-terminal from `script`) the import shows its progress on stderr:
/// count, percentage, rate and the final state; the record errors are still listed.
#[tokio::test]
async fn cli_import_progress_on_terminal() {
    let (dsn, _tmp) = fresh_dsn(Db::Sqlite).await;
    let f = Files::new();
    let mut records: Vec<Value> = (0..40).map(|_| good(&unique_email())).collect();
    records.insert(5, json!({"traits": {"email": "not-an-email"}}));
    let file = f.write("many.json", &json!(records));
    let bin = env!("CARGO_BIN_EXE_idflow");
    let cmd = format!("'{bin}' identities import '{file}' --database '{dsn}' --config '{}'", f.config);
    let mut c = Command::new("script");
    c.args(["-q", "-e", "-c", &cmd, "/dev/null"]);
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") {
            c.env_remove(k);
        }
    }
    let o = c.env("IDFLOW_LOG", "error").output().expect("run script (util-linux) for a pseudo-terminal");
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("\r\u{1b}[K"), "no progress redraw in {out:?}");
    assert!(out.contains("41/41 records (100%), "), "no final progress in {out:?}");
    assert!(out.contains("/s, done in "), "no rate in {out:?}");
    assert!(out.contains("record 5: "), "{out:?}");
    let imported =
        out.split(['\r', '\n']).filter(|l| l.trim_start_matches("\u{1b}[K").starts_with("imported ")).count();
    assert_eq!(imported, 40, "{out:?}");
    assert!(out.contains("1 of 41 records could not be imported (40 imported)"), "{out:?}");
}
