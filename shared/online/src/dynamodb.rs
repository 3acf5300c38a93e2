//! DynamoDB as the online store on AWS: one item per (view, entity) with the encoded record
//! as a binary attribute. Writes are conditional on the stored record not being newer, so a
//! late redelivery of an older snapshot cannot roll an entity back.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use features::{OnlineError, OnlineRecord, OnlineStore};
use serde_json::{Value, json};

use crate::aws::{AwsError, AwsJsonClient, Credentials, env_credentials, env_region};

/// DynamoDB's item size limit.
pub const ITEM_LIMIT: usize = 400 * 1024;

fn backend(e: AwsError) -> OnlineError {
    OnlineError::Backend(e.to_string())
}

#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: AwsJsonClient,
    table: String,
}

impl DynamoStore {
    /// `endpoint`: `None` for AWS's regional endpoint.
    pub fn new(
        table: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
        credentials: Option<Credentials>,
    ) -> Result<DynamoStore, OnlineError> {
        let region = region
            .map(str::to_string)
            .or_else(env_region)
            .unwrap_or_else(|| "us-east-1".into());
        let credentials = match credentials {
            Some(c) => c,
            None => env_credentials().map_err(backend)?,
        };
        let endpoint = endpoint
            .map(str::to_string)
            .unwrap_or_else(|| format!("https://dynamodb.{region}.amazonaws.com/"));
        Ok(DynamoStore {
            client: AwsJsonClient::new(
                &endpoint,
                &region,
                "dynamodb",
                "DynamoDB_20120810",
                credentials,
            ),
            table: table.to_string(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing, string hash key `pk`) unless it exists. Terraform
    /// creates it in deployments; this is for local emulators and first runs.
    pub async fn ensure_table(&self) -> Result<(), OnlineError> {
        match self
            .client
            .request("DescribeTable", &json!({"TableName": self.table}))
            .await
        {
            Ok(_) => return Ok(()),
            Err(AwsError::Service { code, .. }) if code == "ResourceNotFoundException" => {}
            Err(e) => return Err(backend(e)),
        }
        let create = json!({
            "TableName": self.table,
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        });
        match self.client.request("CreateTable", &create).await {
            Ok(_) => Ok(()),
            Err(AwsError::Service { code, .. }) if code == "ResourceInUseException" => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }

    async fn put_one(&self, record: &OnlineRecord) -> Result<bool, OnlineError> {
        let key = OnlineRecord::key(&record.view, &record.entity);
        let bytes = record.encode()?;
        if bytes.len() + key.len() + 64 > ITEM_LIMIT {
            return Err(OnlineError::TooLarge {
                key,
                bytes: bytes.len(),
                limit: ITEM_LIMIT,
            });
        }
        let last = record.state.last_event_us.unwrap_or(i64::MIN).to_string();
        let item = json!({
            "TableName": self.table,
            "Item": {
                "pk": {"S": key},
                "rec": {"B": STANDARD.encode(&bytes)},
                "last_event_us": {"N": last},
                "version": {"S": record.version},
                "materialized_at_us": {"N": record.materialized_at_us.to_string()},
            },
            "ConditionExpression": "attribute_not_exists(pk) OR #t <= :t",
            "ExpressionAttributeNames": {"#t": "last_event_us"},
            "ExpressionAttributeValues": {":t": {"N": last}},
        });
        match self.client.request("PutItem", &item).await {
            Ok(_) => Ok(true),
            Err(AwsError::Service { code, .. }) if code == "ConditionalCheckFailedException" => {
                Ok(false)
            }
            Err(e) => Err(backend(e)),
        }
    }
}

impl OnlineStore for DynamoStore {
    async fn read(&self, view: &str, entity: &str) -> Result<Option<OnlineRecord>, OnlineError> {
        let reply = self
            .client
            .request(
                "GetItem",
                &json!({"TableName": self.table, "Key": {"pk": {"S": OnlineRecord::key(view, entity)}}}),
            )
            .await
            .map_err(backend)?;
        let Some(encoded) = reply
            .get("Item")
            .and_then(|i| i.get("rec"))
            .and_then(|r| r.get("B"))
            .and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|e| OnlineError::Encoding(e.to_string()))?;
        OnlineRecord::decode(&bytes).map(Some)
    }

    async fn write(&self, records: &[OnlineRecord]) -> Result<usize, OnlineError> {
        let mut written = 0;
        // Conditional writes cannot be batched; a few in flight at a time keeps this quick.
        for chunk in records.chunks(16) {
            let results = futures::future::join_all(chunk.iter().map(|r| self.put_one(r))).await;
            for r in results {
                if r? {
                    written += 1;
                }
            }
        }
        Ok(written)
    }
}
