//! The `idflow` command line: migrate, config show (redaction, env overrides, key-naming
//! errors), identities import and list.

use crate::both_dbs;
use crate::support::*;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output};

fn idflow(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idflow"));
    cmd.args(args).env_remove("IDFLOW_CONFIG").env("IDFLOW_LOG", "error");
    // Only the variables a test sets: no inherited IDFLOW_* configuration.
    for (k, _) in std::env::vars() {
        if k.starts_with("IDFLOW_") && k != "IDFLOW_LOG" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run idflow")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn tmp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("idflow-cli-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `idflow migrate --database …` creates the schema and can run again.
#[test]
fn cli_migrate_sqlite() {
    let dir = tmp_dir();
    let dsn = format!("sqlite://{}/x.db?mode=rwc", dir.0.display());
    let o = idflow(&["migrate", "--database", &dsn], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("migrations applied"));
    assert!(dir.0.join("x.db").exists());
    let o = idflow(&["migrate", "--database", &dsn], &[]);
    assert!(o.status.success(), "second run: {}", stderr(&o));
    // An unsupported URL fails with a message.
    let o = idflow(&["migrate", "--database", "mysql://localhost/x"], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("unsupported database URL"), "{}", stderr(&o));
}

/// `config show` prints the effective configuration with secrets and DSN passwords redacted.
#[test]
fn cli_config_show_redacts() {
    let dir = tmp_dir();
    let f = write(
        &dir.0,
        "f.yaml",
        "dsn: postgres://idflow:hunter2-db-pass@db.example.com/idflow\nsecrets:\n  cookie:\n    - super-secret-cookie-value-0123456789\n  cipher:\n    - another-secret-cipher-value-0123456\nserve:\n  public:\n    base_url: https://id.example.com/\n",
    );
    let o = idflow(&["config", "show", "--config", &f], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(!out.contains("super-secret-cookie-value"), "{out}");
    assert!(!out.contains("another-secret-cipher-value"), "{out}");
    assert!(!out.contains("hunter2-db-pass"), "{out}");
    assert!(out.contains("**redacted**"), "{out}");
    assert!(out.contains("https://id.example.com/"), "{out}");
    // The output is YAML that loads back.
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).unwrap();
    assert_eq!(v["serve"]["public"]["base_url"].as_str(), Some("https://id.example.com/"));
}

/// An unknown key or a bad value: non-zero exit and a message naming the key.
#[test]
fn cli_config_errors_name_the_key() {
    let dir = tmp_dir();
    let cases = [
        ("selfservice:\n  flows:\n    settings:\n      lifespam: 1h\n", vec!["selfservice.flows.settings", "lifespam"]),
        ("session:\n  lifespan: forever\n", vec!["session.lifespan"]),
        ("limits:\n  max_body_bytes: lots\n", vec!["limits.max_body_bytes"]),
        ("serve:\n  public:\n    base_url: not a url\n", vec!["serve.public.base_url"]),
        ("dsn: [1, 2]\n", vec!["dsn"]),
        ("frobnicate: true\n", vec!["frobnicate"]),
        ("selfservice:\n  flows:\n    recovery:\n      use: link\n", vec!["selfservice.flows.recovery.use", "link"]),
    ];
    for (yaml, keys) in cases {
        let f = write(&dir.0, "bad.yaml", yaml);
        for args in [vec!["config", "show", "--config", &f], vec!["migrate", "--config", &f]] {
            let o = idflow(&args, &[]);
            assert!(!o.status.success(), "{yaml:?} {args:?} should fail");
            let err = stderr(&o);
            for k in &keys {
                assert!(err.contains(k), "{yaml:?}: message should name {k}: {err}");
            }
        }
    }
    let o = idflow(&["config", "show", "--config", &dir.0.join("missing.yaml").display().to_string()], &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing.yaml"), "{}", stderr(&o));
}

/// `IDFLOW_SERVE__PUBLIC__BASE_URL` overrides the file; a bad env value names its key.
#[test]
fn cli_env_override() {
    let dir = tmp_dir();
    let f = write(&dir.0, "f.yaml", "serve:\n  public:\n    base_url: https://file.example.com/\n");
    let o =
        idflow(&["config", "show", "--config", &f], &[("IDFLOW_SERVE__PUBLIC__BASE_URL", "https://env.example.com/")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["serve"]["public"]["base_url"].as_str(), Some("https://env.example.com/"));
    let o = idflow(&["config", "show"], &[("IDFLOW_SESSION__LIFESPAN", "2h")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["session"]["lifespan"].as_str(), Some("2h"));
    let o = idflow(&["config", "show"], &[("IDFLOW_SESSION__LIFESPAN", "forever")]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("session.lifespan"), "{}", stderr(&o));
}

/// Import identities from a file, list them, and log in with the imported passwords.
async fn cli_identities_import_list(db: Db) {
    let (dsn, tmp) = fresh_dsn(db).await;
    let dir = tmp_dir();
    let a = unique_email();
    let b = unique_email();
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let file = write(
        &dir.0,
        "ids.json",
        &json!([
            {"traits": {"email": a}, "credentials": {"password": {"config": {"password": PASSWORD}}}},
            {"traits": {"email": b}, "metadata_public": {"imported": true}, "credentials": {"password": {"config": {"hashed_password": hash}}}},
        ])
        .to_string(),
    );
    let cfg = write(&dir.0, "cfg.yaml", "hashers:\n  argon2: { memory: 1024, iterations: 1, parallelism: 1 }\n");
    let o = idflow(&["identities", "import", &file, "--database", &dsn, "--config", &cfg], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().filter(|l| l.starts_with("imported ")).count(), 2, "{}", stdout(&o));

    let o = idflow(&["identities", "list", "--database", &dsn], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Vec<Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut emails: Vec<&str> = listed.iter().map(|i| i["traits"]["email"].as_str().unwrap()).collect();
    emails.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(emails, want);

    // A bad record fails the command and is named by its index; the good one is imported.
    let c = unique_email();
    let bad = write(
        &dir.0,
        "bad.json",
        &json!([{"traits": {"email": c}}, {"traits": {"email": "nope"}}, {"traitz": {}}]).to_string(),
    );
    let o = idflow(&["identities", "import", &bad, "--database", &dsn], &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("record 1: ") && err.contains("record 2: "), "{err}");
    let o =
        idflow(&["identities", "import", &dir.0.join("nothing.json").display().to_string(), "--database", &dsn], &[]);
    assert!(!o.status.success());
    let o = idflow(&["identities", "list", "--database", &dsn], &[]);
    assert_eq!(stdout(&o).lines().count(), 3);

    // The server on the same database accepts the imported passwords.
    let app = spawn_on(db, dsn, tmp, |_| {}).await;
    for e in [&a, &b] {
        let out = app.login(e, PASSWORD).await;
        assert!(out["session_token"].is_string(), "{e}: {out}");
    }
}
both_dbs!(cli_identities_import_list);
