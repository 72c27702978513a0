//! Every limit a send request is held to (documented in docs/api.md), and the refusals for going over the
//! ones checked after parsing: the encoded message size, and an attachment's own. The counts are enforced
//! while the body is parsed (`wire.rs`), so a request over one is refused before the rest of it is read.

use opensend_core::ErrorCode;

use crate::error::ApiError;

/// Request body of `POST /emails` (base64 makes attachments a third larger than the message).
pub const BODY_BYTES: usize = 40 * 1024 * 1024;
/// Request body of `POST /emails/batch`, whose emails cannot attach files: about 160 KiB for each of
/// 100 emails, room for an HTML body at the size where Gmail starts clipping (102 KiB), its text
/// version, and full address lists, headers and tags.
pub const BATCH_BODY_BYTES: usize = 16 * 1024 * 1024;
/// How deeply a send request's JSON may nest. The deepest field, a Node `Buffer`'s `data` in a batch,
/// is at level 6.
pub const JSON_DEPTH: usize = 32;
/// The message as it will be sent, after MIME encoding: Amazon SES's limit.
pub const MESSAGE_BYTES: usize = 40 * 1024 * 1024;
pub const TO: usize = 50;
pub const CC: usize = 50;
pub const BCC: usize = 50;
pub const REPLY_TO: usize = 10;
pub const SUBJECT_CHARS: usize = 998;
pub const HEADERS: usize = 50;
pub const HEADER_NAME_CHARS: usize = 76;
pub const HEADER_VALUE_CHARS: usize = 998;
pub const TAGS: usize = 50;
pub const TAG_CHARS: usize = 256;
pub const ATTACHMENTS: usize = 100;
pub const FILENAME_CHARS: usize = 255;
pub const CONTENT_ID_CHARS: usize = 128;
/// How far ahead `scheduled_at` may be.
pub const SCHEDULE_AHEAD_DAYS: i64 = 30;
pub const BATCH: usize = 100;
/// Entries of `template.variables` in a send request.
pub const TEMPLATE_VARIABLES: usize = 100;

/// The 422 for a message whose bodies and attachments (`raw_bytes`, before encoding) would be over
/// `MESSAGE_BYTES` once encoded.
pub fn check_message_size(raw_bytes: usize) -> Result<(), ApiError> {
    let estimate = estimated_message_bytes(raw_bytes);
    if estimate > MESSAGE_BYTES {
        return Err(ApiError::validation(format!(
            "The message would be about {} MiB once encoded; the limit is {} MiB.",
            estimate / (1024 * 1024),
            MESSAGE_BYTES / (1024 * 1024)
        )));
    }
    Ok(())
}

/// A 422 `invalid_attachment` about `attachments[index]`.
pub fn bad_attachment(index: usize, message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidAttachment,
        format!("attachments[{index}]: {message}"),
    )
}

/// Upper bound of the encoded message, from the bytes of its bodies and attachments: every part
/// base64-encoded (4/3, plus line breaks) and room for the headers. Quoted-printable text is never larger
/// than that for the bodies mail-builder writes.
fn estimated_message_bytes(raw_bytes: usize) -> usize {
    raw_bytes.saturating_mul(138) / 100 + HEADER_ALLOWANCE
}

/// Room left for the headers in the message-size estimate.
const HEADER_ALLOWANCE: usize = 64 * 1024;

/// The most bytes bodies and attachments together may have: the largest `raw_bytes` that
/// [`check_message_size`] accepts.
pub fn max_raw_message_bytes() -> usize {
    (MESSAGE_BYTES - HEADER_ALLOWANCE) * 100 / 138
}
