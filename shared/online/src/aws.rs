//! A small client for AWS JSON-protocol services (DynamoDB, SQS): one signed POST per call,
//! SigV4 via `aws-sigv4`. Works against AWS and local emulators (moto) alike.

use std::time::SystemTime;

pub use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("{0}")]
    Config(String),
    #[error("{action}: {message}")]
    Transport { action: String, message: String },
    /// The service answered with an error; `code` is its `__type` without the namespace.
    #[error("{action}: HTTP {status}: {code}: {message}")]
    Service {
        action: String,
        status: u16,
        code: String,
        message: String,
    },
}

/// Credentials and region from the usual `AWS_*` environment variables.
pub fn env_credentials() -> Result<Credentials, AwsError> {
    let key = std::env::var("AWS_ACCESS_KEY_ID")
        .map_err(|_| AwsError::Config("AWS_ACCESS_KEY_ID is not set".into()))?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .map_err(|_| AwsError::Config("AWS_SECRET_ACCESS_KEY is not set".into()))?;
    let token = std::env::var("AWS_SESSION_TOKEN").ok();
    Ok(Credentials::new(key, secret, token, None, "environment"))
}

pub fn env_region() -> Option<String> {
    std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .ok()
}

/// One service endpoint.
#[derive(Debug, Clone)]
pub struct AwsJsonClient {
    client: reqwest::Client,
    endpoint: String,
    region: String,
    /// Signing name (`dynamodb`, `sqs`).
    service: String,
    /// Target prefix (`DynamoDB_20120810`, `AmazonSQS`).
    target_prefix: String,
    credentials: Credentials,
}

impl AwsJsonClient {
    pub fn new(
        endpoint: &str,
        region: &str,
        service: &str,
        target_prefix: &str,
        credentials: Credentials,
    ) -> AwsJsonClient {
        AwsJsonClient {
            client: reqwest::Client::new(),
            endpoint: endpoint.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            target_prefix: target_prefix.to_string(),
            credentials,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Sends `<prefix>.<action>` with a JSON body and returns the JSON reply.
    pub async fn request(&self, action: &str, body: &Value) -> Result<Value, AwsError> {
        let transport = |message: String| AwsError::Transport {
            action: action.to_string(),
            message,
        };
        let body = serde_json::to_vec(body).map_err(|e| transport(e.to_string()))?;
        let target = format!("{}.{action}", self.target_prefix);
        let mut request = http::Request::builder()
            .method("POST")
            .uri(&self.endpoint)
            .header("content-type", "application/x-amz-json-1.0")
            .header("x-amz-target", &target)
            .body(body.clone())
            .map_err(|e| transport(e.to_string()))?;
        let identity = self.credentials.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| transport(e.to_string()))?
            .into();
        let headers: Vec<(&str, &str)> = request
            .headers()
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)))
            .collect();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| transport(e.to_string()))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| transport(e.to_string()))?
            .into_parts();
        instructions.apply_to_request_http1x(&mut request);
        let request = reqwest::Request::try_from(request).map_err(|e| transport(e.to_string()))?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| transport(format!("{} ({})", e, self.endpoint)))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| transport(e.to_string()))?;
        if !status.is_success() {
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            let code = parsed
                .get("__type")
                .and_then(Value::as_str)
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
                .unwrap_or_default();
            let message = parsed
                .get("message")
                .or_else(|| parsed.get("Message"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(text);
            return Err(AwsError::Service {
                action: action.to_string(),
                status: status.as_u16(),
                code,
                message,
            });
        }
        if text.trim().is_empty() {
            Ok(Value::Null)
        } else {
            serde_json::from_str(&text).map_err(|e| transport(e.to_string()))
        }
    }
}
