//! The application a config reload can replace while it serves.
//!
//! Every request is served by the application current when it arrives: one atomic load
//! and a reference-count increment on the hot path. A request or stream in flight keeps
//! the application (and through it the `AppState`) it started with until it ends, so a
//! reload never cuts one off; connections stay open across a swap.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::Request;
use axum::response::Response;
use tower::Service;

/// Holds the current application; clone [`Reloadable::app`] into the server once.
#[derive(Clone)]
pub struct Reloadable(Arc<ArcSwap<Router>>);

impl Reloadable {
    pub fn new(app: Router) -> Self {
        Self(Arc::new(ArcSwap::from_pointee(app)))
    }

    /// Serves new requests with `app` from now on.
    pub fn swap(&self, app: Router) {
        self.0.store(Arc::new(app));
    }

    /// The application to hand the server: it forwards each request to the current one.
    pub fn app(&self) -> Router {
        Router::new().fallback_service(Current(self.0.clone()))
    }
}

#[derive(Clone)]
struct Current(Arc<ArcSwap<Router>>);

impl Service<Request> for Current {
    type Response = Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // A `Router` is always ready; its clone shares the routes (one Arc).
        let mut app = Router::clone(&self.0.load());
        app.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    async fn body(app: &Router) -> String {
        let res = app
            .clone()
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn new_requests_see_the_swapped_application() {
        let reloadable = Reloadable::new(Router::new().route("/", get(|| async { "one" })));
        let app = reloadable.app();
        assert_eq!(body(&app).await, "one");
        reloadable.swap(Router::new().route("/", get(|| async { "two" })));
        assert_eq!(body(&app).await, "two");
    }
}
