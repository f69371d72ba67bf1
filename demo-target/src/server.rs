//! The demo's listener: HTTP/1 on a loopback port, every request to the shop.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::call::dependency;
use crate::functions::{reserves, Shop};
use crate::queue::Queue;
use crate::{DemoConfig, Profile, DEPENDENCIES};

/// A running demo shop; dropping it stops it.
#[derive(Debug)]
pub struct Demo {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Demo {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until the task running it is cancelled.
    pub async fn wait(mut self) {
        if let Some(accept) = self.tasks.first_mut() {
            let _ = accept.await;
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds `config.listen` and serves the shop on the current runtime.
pub async fn start(config: DemoConfig) -> std::io::Result<Demo> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let client = crate::call::HttpClient::new(Client::builder(TokioExecutor::new()).build_http());
    let base = |name: &str| {
        config
            .dependencies
            .get(name)
            .map(|url| url.trim_end_matches('/').to_owned())
    };
    let dependencies = DEPENDENCIES
        .iter()
        .filter_map(|name| {
            Some((
                *name,
                dependency(config.profile, client.clone(), base(name)?),
            ))
        })
        .collect::<BTreeMap<_, _>>();
    let queue = match (config.profile, base("crm")) {
        (Profile::Hardened, Some(crm)) => Some(Queue::start(client.clone(), crm)),
        _ => None,
    };
    let shop = Shop::new(config.profile, dependencies, queue);
    let mut tasks = Vec::new();
    let serving = std::sync::Arc::clone(&shop);
    tasks.push(tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let shop = std::sync::Arc::clone(&serving);
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<Incoming>| {
                    let shop = std::sync::Arc::clone(&shop);
                    async move {
                        let reply = shop.handle(request.uri().path(), request.headers()).await;
                        Ok::<_, Infallible>(reply)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }));
    if let (Profile::Hardened, Some(url)) = (config.profile, &config.alert_url) {
        tasks.push(crate::alerts::watch(client, url.clone(), reserves(&shop)));
    }
    Ok(Demo { addr, tasks })
}
