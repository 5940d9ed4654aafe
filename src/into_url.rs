//! [`IntoUrl`]: what every method that takes a URL accepts. A leaf: it
//! imports nothing above `error`.

use url::Url;

use crate::{Error, ErrorKind, error::redact_raw};

/// Anything that names a URL: `&str`, `String`, `&String`, `Url`, `&Url`.
/// A bad one is an error of kind [`ErrorKind::InvalidUrl`], never a panic.
pub trait IntoUrl: sealed::Sealed {
    /// Parses (or clones) the URL.
    fn into_url(self) -> crate::Result<Url>;
}

mod sealed {
    pub trait Sealed {}
}

fn parse_url(s: &str) -> crate::Result<Url> {
    Url::parse(s).map_err(|e| {
        Error::new(ErrorKind::InvalidUrl, format!("parse {:?}", redact_raw(s))).with_source(e)
    })
}

impl IntoUrl for &str {
    fn into_url(self) -> crate::Result<Url> {
        parse_url(self)
    }
}
impl sealed::Sealed for &str {}
impl IntoUrl for String {
    fn into_url(self) -> crate::Result<Url> {
        parse_url(&self)
    }
}
impl sealed::Sealed for String {}
impl IntoUrl for &String {
    fn into_url(self) -> crate::Result<Url> {
        parse_url(self)
    }
}
impl sealed::Sealed for &String {}
impl IntoUrl for Url {
    fn into_url(self) -> crate::Result<Url> {
        Ok(self)
    }
}
impl sealed::Sealed for Url {}
impl IntoUrl for &Url {
    fn into_url(self) -> crate::Result<Url> {
        Ok(self.clone())
    }
}
impl sealed::Sealed for &Url {}
