//! The values that cross the transport's boundary: [`Request`] in,
//! [`Response`] out. They name no connection, pool or thread; the client
//! builds requests above, the transport answers them below.

mod request;
mod response;

pub use request::Request;
pub use response::Response;
