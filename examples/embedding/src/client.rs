//! A small JSON client over hyper, for the example to call itself.

use std::net::SocketAddr;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::AnyError;

/// Calls one server.
pub struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    /// A client for `http://addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            base: format!("http://{addr}"),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<(StatusCode, Value), AnyError> {
        self.json(Method::POST, path, None, Some(body)).await
    }

    /// `GET path`, with a bearer token if given.
    pub async fn get(
        &self,
        path: &str,
        token: Option<&str>,
    ) -> Result<(StatusCode, Value), AnyError> {
        self.json(Method::GET, path, token, None).await
    }

    /// `GET path` as text.
    pub async fn get_text(&self, path: &str) -> Result<(StatusCode, String), AnyError> {
        let (status, bytes) = self.call(Method::GET, path, None, None).await?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), AnyError> {
        let (status, bytes) = self.call(method, path, token, body).await?;
        Ok((status, serde_json::from_slice(&bytes)?))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Bytes), AnyError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(json) => {
                request = request.header("content-type", "application/json");
                Full::from(serde_json::to_vec(json)?)
            }
            None => Full::default(),
        };
        let response = self.client.request(request.body(body)?).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}
