//! Running the listeners: bind, serve until told to stop, finish in-flight requests, return.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::jobs::delivery::DeliveryWork;
use crate::jobs::domain_checks::DomainChecks;
use crate::jobs::retention::Cleanup;
use crate::jobs::webhook_dispatch::Dispatcher;
use crate::state::AppState;
use crate::{api, dashboard, ingester, smtp};

/// What a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub ingester: bool,
    /// The delivery worker and the webhook dispatcher.
    pub worker: bool,
    /// The SMTP listeners: the submission relay (`SMTP_PORT`, `SMTPS_PORT`) and inbound mail (`MX_PORT`).
    pub smtp: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        ingester: true,
        worker: true,
        smtp: true,
    };
    pub const API: Roles = Roles {
        api: true,
        ingester: false,
        worker: false,
        smtp: false,
    };
    pub const INGESTER: Roles = Roles {
        api: false,
        ingester: true,
        worker: false,
        smtp: false,
    };
    pub const WORKER: Roles = Roles {
        api: false,
        ingester: false,
        worker: true,
        smtp: false,
    };
    pub const SMTP: Roles = Roles {
        api: false,
        ingester: false,
        worker: false,
        smtp: true,
    };
}

/// Listeners that are accepting connections.
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    pub ingester_addr: Option<SocketAddr>,
    /// The SMTP listeners that are on.
    pub smtp: smtp::listener::SmtpAddrs,
    stop: watch::Sender<bool>,
    tasks: JoinSet<std::io::Result<()>>,
}

/// Tells a [`Running`] server to stop accepting and finish what it has.
#[derive(Clone)]
pub struct StopHandle(watch::Sender<bool>);

impl StopHandle {
    pub fn stop(&self) {
        let _ = self.0.send(true);
    }
}

/// Binds the listeners of `roles` on `BIND_ADDRESS` (`PORT`, `INGESTER_PORT`; port 0 picks a free one),
/// starts serving, and starts the delivery worker when asked.
pub async fn start(state: AppState, roles: Roles) -> std::io::Result<Running> {
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let ip = state.config.listen.bind_address;
    let mut bind = async |port: u16, router: axum::Router| -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind(SocketAddr::new(ip, port))
            .await
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen on {ip}:{port}: {e}"))
            })?;
        let addr = listener.local_addr()?;
        let mut stopped = stopped.clone();
        tasks.spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            })
            .await
        });
        Ok(addr)
    };
    if roles.api {
        state.request_log.start(state.store.clone());
    }
    let api_addr = match roles.api {
        true => Some(bind(state.config.listen.port, public_router(state.clone())).await?),
        false => None,
    };
    let ingester_addr = match roles.ingester {
        true => Some(
            bind(
                state.config.listen.ingester_port,
                ingester::router(state.clone()),
            )
            .await?,
        ),
        false => None,
    };
    let smtp = match roles.smtp {
        true => smtp::listener::start(&state, &stopped, &mut tasks).await?,
        false => smtp::listener::SmtpAddrs::default(),
    };
    if roles.worker {
        let worker = DeliveryWork::from_config(state.clone())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        tasks.spawn(run_until(worker.run(stopped.clone())));
        let client = state.outbound.shared_client().clone();
        let dispatcher = Dispatcher::new(state.clone(), client);
        tasks.spawn(run_until(dispatcher.run(stopped.clone())));
        tasks.spawn(run_until(
            crate::jobs::contact_imports::ContactImportWork::new(state.clone())
                .run(stopped.clone()),
        ));
        tasks.spawn(run_until(
            crate::jobs::broadcasts::BroadcastWork::new(state.clone()).run(stopped.clone()),
        ));
    }
    // The full process (`opensend serve`) also runs the jobs a split deployment leaves to `opensend
    // scheduler`: domain re-checks and the hourly cleanup. Leases make it safe when several such processes
    // share one database.
    if roles == Roles::ALL {
        tasks.spawn(run_until(
            DomainChecks::new(state.clone()).run(stopped.clone()),
        ));
        tasks.spawn(run_until(
            Cleanup::scheduled(state.clone()).run(stopped.clone()),
        ));
    }
    Ok(Running {
        api_addr,
        ingester_addr,
        smtp,
        stop,
        tasks,
    })
}

/// What `PORT` serves: the public API at `/` and `/api`, the dashboard under `/dashboard`, the unsubscribe
/// pages under `/unsubscribe` (linked from broadcast emails), and `GET /` sending browsers to the dashboard
/// (no API route lives at `/` itself).
pub fn public_router(state: AppState) -> axum::Router {
    let routes = axum::Router::new()
        .route(
            "/",
            axum::routing::get(|| async { axum::response::Redirect::to("/dashboard") }),
        )
        .nest_service("/dashboard", dashboard::router(state.clone()))
        .merge(crate::tracking::routes::router(state.clone()))
        .merge(crate::unsubscribe::router(state.clone()))
        .fallback_service(api::routes(state.clone()));
    crate::http::listener(routes, &state)
}

/// A background job as one of the server's tasks.
async fn run_until(job: impl std::future::Future<Output = ()>) -> std::io::Result<()> {
    job.await;
    Ok(())
}

impl Running {
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle(self.stop.clone())
    }

    /// Waits until every listener has stopped (after [`StopHandle::stop`]) and its requests are answered.
    pub async fn wait(mut self) -> std::io::Result<()> {
        while let Some(result) = self.tasks.join_next().await {
            result.map_err(std::io::Error::other)??;
        }
        Ok(())
    }
}

/// Installs the SIGINT (Ctrl-C) and SIGTERM handlers now, and returns a future that resolves when either
/// arrives. Installing before listening matters: a signal sent as soon as the server reports it is ready
/// must stop it gracefully, not kill it.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
