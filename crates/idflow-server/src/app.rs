//! `Application::build(config)`: the one place that picks the database, loads schemas and
//! secrets, and binds both listeners. Used by `main` and by the integration tests.

use crate::http::{self, AppState};
use crate::metrics::{self, Metrics};
use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use idflow_core::clock::Clock;
use idflow_core::config::Config;
use idflow_core::error::{Error, ErrorKind};
use idflow_core::schema::IdentitySchema;
use idflow_core::selfservice::{Engine, WebHooks};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Web hooks over a real HTTP client.
struct HttpHooks {
    client: reqwest::Client,
}

#[async_trait::async_trait]
impl WebHooks for HttpHooks {
    async fn post(&self, url: &str, body: &Value, timeout: Duration) -> Result<u16, String> {
        // The reason reaches the end user (`continue_with`, form errors) and the logs: it names
        // the kind of failure only, never reqwest's text, which carries the URL and its query
        // (where operators put tokens).
        let resp = self.client.post(url).json(body).timeout(timeout).send().await.map_err(|e| {
            if e.is_timeout() {
                format!("timed out after {} ms", timeout.as_millis())
            } else if e.is_connect() {
                "the connection failed".to_string()
            } else if e.is_builder() {
                "the hook URL is not valid".to_string()
            } else {
                "the request failed".to_string()
            }
        })?;
        Ok(resp.status().as_u16())
    }
}

/// A built, bound server.
pub struct Application {
    public: TcpListener,
    admin: TcpListener,
    state: AppState,
    metrics: Arc<Metrics>,
    /// SMTP delivery (`None` when `courier.smtp.connection_uri` is unset).
    mail: Option<Arc<dyn idflow_core::courier::worker::MailTransport>>,
}

/// Read a schema reference (`file://`, `base64://`, or a plain path).
fn load_schema_text(url: &str) -> anyhow::Result<String> {
    use base64::Engine as _;
    if let Some(b) = url.strip_prefix("base64://") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b))
            .context("identity schema base64:// URL is not valid base64")?;
        return String::from_utf8(bytes).context("identity schema is not UTF-8");
    }
    let path = url.strip_prefix("file://").unwrap_or(url);
    std::fs::read_to_string(path).with_context(|| format!("could not read identity schema {path}"))
}

/// Load the configured identity schemas (the built-in default when none is configured).
pub fn load_schemas(cfg: &Config) -> anyhow::Result<HashMap<String, Arc<IdentitySchema>>> {
    let mut map = HashMap::new();
    for (i, s) in cfg.identity.schemas.iter().enumerate() {
        let text = load_schema_text(&s.url).with_context(|| format!("at key `identity.schemas.{i}.url`"))?;
        let schema = IdentitySchema::compile_str(&s.id, &text)
            .map_err(|e| anyhow::anyhow!("invalid identity schema `{}` (key `identity.schemas.{i}`): {e}", s.id))?;
        map.insert(s.id.clone(), Arc::new(schema));
    }
    if !map.contains_key(&cfg.identity.default_schema_id) {
        if !cfg.identity.schemas.is_empty() {
            anyhow::bail!(
                "invalid configuration at key `identity.default_schema_id`: no schema with id {:?} is configured",
                cfg.identity.default_schema_id
            );
        }
        let schema =
            IdentitySchema::compile_str(&cfg.identity.default_schema_id, idflow_core::schema::DEFAULT_SCHEMA_JSON)
                .map_err(|e| anyhow::anyhow!("built-in identity schema: {e}"))?;
        map.insert(cfg.identity.default_schema_id.clone(), Arc::new(schema));
    }
    Ok(map)
}

/// The database URL in effect.
pub fn dsn(cfg: &Config) -> String {
    cfg.dsn.clone().unwrap_or_else(|| "sqlite://idflow.db?mode=rwc".to_string())
}

/// Secrets from config, or generated once and persisted in the database (shared by all nodes).
async fn secret_keys(
    store: &Arc<dyn idflow_core::store::Store>,
    configured: &[idflow_core::config::Secret],
    name: &str,
) -> anyhow::Result<Vec<Vec<u8>>> {
    if !configured.is_empty() {
        return Ok(configured.iter().map(|s| s.0.as_bytes().to_vec()).collect());
    }
    let fresh = idflow_core::crypto::random_token("");
    let v = store.kv_get_or_init(&format!("secret:{name}"), &fresh).await?;
    if v == fresh {
        tracing::warn!("no `secrets.{name}` configured: generated one and stored it in the database");
    }
    Ok(vec![v.into_bytes()])
}

impl Application {
    /// Connect, migrate, load schemas and secrets, bind both listeners.
    pub async fn build(cfg: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(cfg, Clock::new()).await
    }

    pub async fn build_with_clock(cfg: Config, clock: Clock) -> anyhow::Result<Self> {
        Self::build_with_listeners(cfg, clock, None).await
    }

    /// Like [`Application::build_with_clock`], but serve on listeners the caller has already
    /// bound (public, admin), so a port picked by the caller cannot be taken in between.
    pub async fn build_with_listeners(
        cfg: Config,
        clock: Clock,
        listeners: Option<(std::net::TcpListener, std::net::TcpListener)>,
    ) -> anyhow::Result<Self> {
        let schemas = load_schemas(&cfg)?;
        let dsn = dsn(&cfg);
        let pool = idflow_store::PoolConfig {
            max_connections: cfg.database.max_connections,
            min_connections: cfg.database.min_connections,
            acquire_timeout: cfg.database.acquire_timeout.0,
        };
        let store = idflow_store::connect(&dsn, &pool)
            .await
            .with_context(|| format!("could not open the database {}", idflow_core::config::redact_dsn(&dsn)))?;
        let cookie_keys = secret_keys(&store, &cfg.secrets.cookie, "cookie").await?;
        let cipher_key =
            secret_keys(&store, &cfg.secrets.cipher, "cipher").await?.into_iter().next().unwrap_or_default();
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let templates =
            idflow_core::courier::Courier::from_config(&cfg).map_err(|e| anyhow::anyhow!("courier templates: {e}"))?;
        let mail = crate::courier::transport(&cfg.courier)?;
        let public_addr = cfg.serve.public.addr(4433);
        let admin_addr = cfg.serve.admin.addr(4434);
        let cfg = Arc::new(cfg);
        let metrics = Arc::new(Metrics::new().context("could not set up the metrics registry")?);
        let engine = Arc::new(
            Engine::new(
                cfg,
                store,
                clock,
                schemas,
                cookie_keys,
                cipher_key,
                Arc::new(HttpHooks { client: client.clone() }),
            )
            .with_observer(metrics.clone())
            .with_oidc(Arc::new(crate::oidc::HttpOidc::new(client)))
            .with_courier(templates),
        );
        engine.log_webauthn_availability();
        let (public, admin) = match listeners {
            Some((public, admin)) => {
                public.set_nonblocking(true)?;
                admin.set_nonblocking(true)?;
                (TcpListener::from_std(public)?, TcpListener::from_std(admin)?)
            }
            None => (
                TcpListener::bind(&public_addr).await.with_context(|| format!("could not listen on {public_addr}"))?,
                TcpListener::bind(&admin_addr).await.with_context(|| format!("could not listen on {admin_addr}"))?,
            ),
        };
        Ok(Application { public, admin, state: AppState::new(engine), metrics, mail })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn engine(&self) -> Arc<Engine> {
        self.state.engine.clone()
    }

    /// The SMTP transport of `courier.smtp.*` (`None` when unset).
    pub fn mail_transport(&self) -> Option<Arc<dyn idflow_core::courier::worker::MailTransport>> {
        self.mail.clone()
    }

    /// Serve until `shutdown` resolves; in-flight requests are drained (for at most
    /// `limits.request_timeout` plus a few seconds).
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        self.run_until_started(shutdown, || {}).await
    }

    /// [`Self::run_until`], calling `started` once the routers are built, just before the
    /// listeners accept (the `serve` command releases its start-up pages there).
    pub async fn run_until_started(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
        started: impl FnOnce(),
    ) -> anyhow::Result<()> {
        let (tx, _) = tokio::sync::broadcast::channel::<()>(1);
        let public = router(self.state.clone(), true, self.metrics.clone());
        let admin = router(self.state.clone(), false, self.metrics.clone());
        tracing::info!(public = %self.public_addr(), admin = %self.admin_addr(), base_url = %self.state.engine.base(), "idflow listening");
        let limits = &self.state.engine.cfg.limits;
        let opts = ServeOpts {
            header_read_timeout: limits.header_read_timeout.0,
            idle_timeout: limits.idle_timeout.0,
            drain: limits.request_timeout.0 + Duration::from_secs(5),
        };
        let p = serve(self.public, public, opts, tx.subscribe());
        let a = serve(self.admin, admin, opts, tx.subscribe());
        // The courier worker stops with the listeners (after the message it is sending).
        let mut stop_courier = tx.subscribe();
        let courier = async {
            if self.state.engine.cfg.courier.worker.enabled {
                if self.mail.is_none() {
                    crate::courier::warn_unconfigured();
                }
                let stop = async move {
                    let _ = stop_courier.recv().await;
                };
                crate::courier::run_worker(self.state.engine.clone(), self.mail.clone(), stop).await;
            }
        };
        let c = cleanup_worker(self.state.engine.clone(), tx.subscribe());
        let trigger = async move {
            shutdown.await;
            tracing::info!("shutting down: draining in-flight requests");
            let _ = tx.send(());
        };
        started();
        tokio::join!(p, a, c, trigger, courier);
        Ok(())
    }
}

/// Run [`idflow_core::selfservice::Engine::cleanup_expired`] and the account deletion worker
/// ([`idflow_core::selfservice::Engine::purge_scheduled_deletions`]) at start and every
/// `cleanup.interval` until `stop` fires (`cleanup.enabled: false` turns both off).
async fn cleanup_worker(engine: Arc<Engine>, mut stop: tokio::sync::broadcast::Receiver<()>) {
    let c = &engine.cfg.cleanup;
    if !c.enabled {
        return;
    }
    let mut tick = tokio::time::interval(c.interval.0);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Err(e) = engine.cleanup_expired().await {
                    tracing::warn!(error = %e, "cleanup run failed");
                }
                // Accounts whose deletion grace period is over (exactly once across nodes).
                if let Err(e) = engine.purge_scheduled_deletions().await {
                    tracing::warn!(error = %e, "account deletion run failed");
                }
            }
            _ = stop.recv() => break,
        }
    }
}

#[derive(Clone, Copy)]
struct ServeOpts {
    header_read_timeout: Duration,
    idle_timeout: Duration,
    drain: Duration,
}

/// Accept HTTP/1.1 connections until `stop` fires, then drain them. Unlike `axum::serve`, a
/// client gets `header_read_timeout` from the first byte of a request to send its headers
/// (slow-header clients are cut off), an idle keep-alive connection is closed after
/// `idle_timeout` (`conn.rs`), and every request carries the TCP peer address.
async fn serve(listener: TcpListener, router: Router, opts: ServeOpts, mut stop: tokio::sync::broadcast::Receiver<()>) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    use tower::ServiceExt as _;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        // hyper's one timer covers the idle wait before each head; `HeadDeadline` adds the
        // shorter deadline for the head itself.
        .header_read_timeout(opts.idle_timeout)
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.recv() => break,
        };
        let _ = stream.set_nodelay(true);
        let head = crate::conn::HeadState::new();
        let io = crate::conn::HeadDeadline::new(stream, opts.header_read_timeout, head.clone());
        let svc = router.clone().map_request(move |mut req: Request<hyper::body::Incoming>| {
            head.head_complete();
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            req.map(axum::body::Body::new)
        });
        let conn = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(opts.drain) => tracing::warn!("shutdown: some connections were still busy after the drain period"),
    }
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health/alive",
    tag = "metadata",
    operation_id = "isAlive",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object))
)]
pub(crate) async fn alive() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Readiness: the database answers.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "metadata",
    operation_id = "isReady",
    responses(
        (status = 200, description = "`{\"status\": \"ok\"}`", body = Object),
        (status = 503, description = "The database is not reachable.", body = Object)
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    match state.engine.store.ping().await {
        Ok(()) => axum::Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"errors": {"database": "not reachable"}})))
                .into_response()
        }
    }
}

/// Security headers on every response.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("same-origin"));
    h.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    if !h.contains_key("content-security-policy") {
        h.insert(
            HeaderName::from_static("content-security-policy"),
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    h.insert(HeaderName::from_static("cache-control"), HeaderValue::from_static("no-store"));
    resp
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("request handler panicked");
    let e = Error::new(ErrorKind::Internal, "");
    (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(crate::wire::error(&e, ""))).into_response()
}

fn router(state: AppState, public: bool, metrics: Arc<Metrics>) -> Router {
    let limit = state.engine.cfg.limits.max_body_bytes;
    let timeout = state.engine.cfg.limits.request_timeout.0;
    let (base, _) =
        if public { crate::openapi::public_routes() } else { crate::openapi::admin_routes() }.split_for_parts();
    let fallback_state = state.clone();
    base.fallback(move |req: Request| {
        let state = fallback_state.clone();
        async move { fallback(state, public, req).await }
    })
    .layer(middleware::from_fn_with_state(state.clone(), http::error::scope))
    .with_state(state)
    .layer(axum::Extension(metrics.clone()))
    .layer(DefaultBodyLimit::max(limit))
    .layer(middleware::from_fn(security_headers))
    .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
    .layer(CatchPanicLayer::custom(panic_response))
    .layer(middleware::from_fn_with_state((metrics, if public { "public" } else { "admin" }), metrics::track))
    .layer(PropagateRequestIdLayer::x_request_id())
    .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let rid = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        // Only method and path: query strings may carry tokens.
        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %rid)
    }))
    .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Unknown routes: admin paths on the public port (and public paths on the admin port) get a
/// 307 to the right listener; everything else a 404 in the error envelope.
async fn fallback(state: AppState, public: bool, req: Request) -> Response {
    let pq = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let path = req.uri().path();
    let target = if public && path.starts_with("/admin/") {
        Some(format!("{}{}", state.engine.cfg.admin_base(), pq))
    } else if !public
        && (path.starts_with("/self-service/") || path.starts_with("/sessions") || path.starts_with("/.well-known/"))
    {
        Some(format!("{}{}", state.engine.base(), pq))
    } else {
        None
    };
    if let Some(t) = target {
        return axum::response::Redirect::temporary(&t).into_response();
    }
    if public && path.starts_with("/v1/") {
        return http::v1::not_found(path).into_response();
    }
    http::error::KratosError(Error::not_found(format!("No route matches {} {}.", req.method(), path))).into_response()
}
