use async_trait::async_trait;

use super::{Envelope, RecipientOutcome, SendOutcome, Transport, TransportError};

/// Development transport: accepts every recipient and sends nothing. The delivery worker keeps the message
/// bytes so they can be read back through the API.
#[derive(Clone, Debug, Default)]
pub struct CaptureTransport;

#[async_trait]
impl Transport for CaptureTransport {
    fn name(&self) -> &'static str {
        "capture"
    }

    fn keeps_mail_local(&self) -> bool {
        true
    }

    async fn send(
        &self,
        envelope: &Envelope,
        _message: &[u8],
    ) -> Result<SendOutcome, TransportError> {
        Ok(SendOutcome {
            provider_message_id: None,
            recipients: envelope
                .recipients
                .iter()
                .map(|address| RecipientOutcome {
                    address: address.clone(),
                    accepted: true,
                    response: "captured, not sent".to_owned(),
                    provider_message_id: None,
                })
                .collect(),
        })
    }
}
