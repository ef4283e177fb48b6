//! The routes emulation tells apart, by the names rules and counters use.

use serde::{Deserialize, Serialize};

/// The routes emulation tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// POST /v1/{slug}: the synchronous call.
    V1,
    /// POST /v2/{slug}.
    Submit,
    /// GET /v2/requests/{id}/status.
    Status,
    /// GET /v2/requests/{id} and the legacy poll_url /v1/requests/{id}.
    Result,
    /// GET /outputs/{id}.png.
    Output,
    /// POST /v2/image/edit/increase_resolution (Bria's API, sync or not).
    Bria,
    /// GET /v2/status/{id} (Bria's status service).
    BriaStatus,
    /// Every route (in rules only).
    Any,
}

impl Route {
    pub fn name(self) -> &'static str {
        match self {
            Route::V1 => "v1",
            Route::Submit => "submit",
            Route::Status => "status",
            Route::Result => "result",
            Route::Output => "output",
            Route::Bria => "bria",
            Route::BriaStatus => "bria-status",
            Route::Any => "any",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [
            Route::V1,
            Route::Submit,
            Route::Status,
            Route::Result,
            Route::Output,
            Route::Bria,
            Route::BriaStatus,
            Route::Any,
        ]
        .into_iter()
        .find(|r| r.name() == name)
    }

    /// Calls of the model: where permissions, rate limits, credits and latency apply.
    pub fn is_call(self) -> bool {
        matches!(self, Route::V1 | Route::Submit | Route::Bria)
    }
}

impl Serialize for Route {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Route {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Route::parse(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown route '{name}' (v1, submit, status, result, output, bria, bria-status, any)"
            ))
        })
    }
}
