//! The parts of an email beyond its addresses and bodies: custom header fields and tags.
//!
//! The API checks them when an email is accepted (names, lengths, reserved headers); these types carry the
//! checked values to the store and back, in the order the client gave them.

use serde::{Deserialize, Serialize};

/// A custom header field of an email (`headers` in a send request), added to the message as it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl Header {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A tag of an email (`tags`): a name and a value the sender chose, echoed in its webhooks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub name: String,
    pub value: String,
}

impl Tag {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
        }
    }
}
