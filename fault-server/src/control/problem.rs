//! Errors as the control API sends them: `{"error": "...", "status": N}`.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

use crate::ControlError;

/// An error response: the status and the message the client is told.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) allow: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    status: u16,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Problem {
            status,
            message: message.into(),
            allow: None,
        }
    }

    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::to_vec(&Body {
            error: &self.message,
            status: self.status.as_u16(),
        })
        .unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

impl From<ControlError> for Problem {
    fn from(error: ControlError) -> Self {
        Problem::new(error.status(), error.to_string())
    }
}
