//! The shop's checkout as a tower service whose payments dependency is
//! reached through any hyper-util connector: the simulation
//! (`harness::sim`) hands it an in-process dependency's duplex connector and
//! tests the middleware — reserve and shedding, deadline, retries with
//! backoff, breaker — unchanged, on a paused clock.

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
use crate::Profile;

/// The checkout function of a shop in `profile`, as the gateway calls it.
///
/// ```
/// use demo_target::{simulated, Profile};
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
pub fn checkout<C>(profile: Profile, payments: C) -> Checkout
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let client = HttpClient::new(Client::builder(TokioExecutor::new()).build(payments));
    let stack = dependency(profile, client, "http://payments".to_owned());
    Checkout {
        shop: Shop::new(profile, BTreeMap::from([("payments", stack)]), None),
    }
}

/// See [`checkout`]. Clones share the shop (its reserve, its breaker).
#[derive(Clone)]
pub struct Checkout {
    shop: Arc<Shop>,
}

impl<B> tower::Service<Request<B>> for Checkout {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shop = Arc::clone(&self.shop);
        let headers = request.headers().clone();
        Box::pin(async move { Ok(shop.handle("/checkout", &headers).await) })
    }
}
