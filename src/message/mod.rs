//! The values that cross the transport's boundary: [`Request`] in,
//! [`Response`] out. They name no connection, pool or thread; the client
//! builds requests above, the transport answers them below.

mod request;
mod response;

pub use request::Request;
pub use response::Response;

/// One exchange: a request in, a response out, no redirects or cookies (Go's
/// `http.RoundTripper`, the interface `Client.Transport` is). [`Transport`]
/// implements it; so can middleware that wraps another round tripper
/// (logging, retries, auth) and mocks that answer without a network
/// ([`Response::from_http`]). Plug one in with
/// [`ClientBuilder::round_tripper`](crate::ClientBuilder::round_tripper): the
/// client's redirects, cookies and deadline stay the client's.
///
/// The request's [`timeout`](Request::timeout) is what remains of the
/// client's deadline for this hop; a round tripper that waits should honour
/// it.
///
/// [`Transport`]: crate::Transport
///
/// ```
/// use nethttp::{Client, Request, Response, RoundTripper, Url, http};
///
/// /// Answers every request with 204, without a network.
/// struct NoContent;
///
/// impl RoundTripper for NoContent {
///     fn round_trip(&self, req: Request) -> nethttp::Result<Response> {
///         let resp = http::Response::builder().status(204).body(std::io::empty()).unwrap();
///         Ok(Response::from_http(resp, req.url().clone()))
///     }
/// }
///
/// let client = Client::builder().round_tripper(NoContent).build()?;
/// assert_eq!(client.get("http://mock.invalid/").send()?.status(), 204);
/// # Ok::<(), nethttp::Error>(())
/// ```
pub trait RoundTripper: Send + Sync + 'static {
    /// Runs one exchange. The response body holds whatever it reads from
    /// until it is read to its end or dropped.
    fn round_trip(&self, req: Request) -> crate::Result<Response>;
}

/// A shared round tripper: a test keeps one `Arc` to inspect its mock
/// while the client holds another.
impl<T: RoundTripper + ?Sized> RoundTripper for std::sync::Arc<T> {
    fn round_trip(&self, req: Request) -> crate::Result<Response> {
        (**self).round_trip(req)
    }
}
