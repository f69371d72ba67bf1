//! The shop's functions as tower services whose dependency is reached
//! through any hyper-util connector: the simulation (`faultline-sim`) hands
//! them an in-process dependency's duplex connector and tests the middleware
//! — reserve and shedding, deadline, retries with backoff, breaker, the
//! crm sync queue — unchanged, on a paused clock.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::call::{dependency, HttpClient};
use crate::functions::Shop;
use crate::queue::Queue;
use crate::Profile;

/// The checkout function of a shop in `profile`, as the gateway calls it.
///
/// ```
/// use faultline_demo::{simulated, Profile};
/// use fault_server::{DependencySpec, InProcessDependency};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let payments = InProcessDependency::new(&DependencySpec::stub("payments"), 0).unwrap();
/// let checkout = simulated::checkout(Profile::Hardened, payments.connector());
/// let response = checkout.oneshot(http::Request::new(bytes::Bytes::new())).await.unwrap();
/// assert_eq!(response.status(), 200);
/// assert_eq!(payments.calls()[0].path, "/charge");
/// # }
/// ```
pub fn checkout<C>(profile: Profile, payments: C) -> Function
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = HttpClient::new(Client::builder(TokioExecutor::new()).build(payments));
    let stack = dependency(profile, client, "http://payments".to_owned());
    Function {
        shop: Shop::new(profile, BTreeMap::from([("payments", stack)]), None),
        path: "/checkout",
    }
}

/// The crm sync function of a shop in `profile`: hardened, it answers 202
/// and its queue delivers each event to crm exactly once (the queue's
/// workers run on the caller's runtime); naive, it calls crm inline.
pub fn crm_sync<C>(profile: Profile, crm: C) -> Function
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = HttpClient::new(Client::builder(TokioExecutor::new()).build(crm));
    let base = "http://crm".to_owned();
    let queue = (profile == Profile::Hardened).then(|| Queue::start(client.clone(), base.clone()));
    let stack = dependency(profile, client, base);
    Function {
        shop: Shop::new(profile, BTreeMap::from([("crm", stack)]), queue),
        path: "/crm_sync",
    }
}

/// One of the shop's functions (see [`checkout`], [`crm_sync`]). Clones share
/// the shop: its reserves, its breaker, its queue.
#[derive(Clone)]
pub struct Function {
    shop: Arc<Shop>,
    path: &'static str,
}

impl<B> tower::Service<Request<B>> for Function {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (shop, path) = (Arc::clone(&self.shop), self.path);
        let headers = request.headers().clone();
        Box::pin(async move { Ok(shop.handle(path, &headers).await) })
    }
}
