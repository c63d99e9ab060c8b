use serde::{Deserialize, Serialize};

use super::Map;
use crate::ErrorKind;

/// OpenAI error body: `{"error":{"message","type","param","code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub message: String,
    #[serde(rename = "type")]
    pub error_type: String,
    /// OpenAI always sends `param` and `code`, null when absent.
    pub param: Option<String>,
    pub code: Option<String>,
    #[serde(flatten)]
    pub rest: Map,
}

impl ErrorBody {
    /// Body for a classified error, with the OpenAI type and code clients look for.
    pub fn from_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                message: message.into(),
                error_type: kind.openai_type().to_owned(),
                param: None,
                code: kind.openai_code().map(str::to_owned),
                rest: Map::new(),
            },
        }
    }
}
