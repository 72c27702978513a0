//! The dashboard: who may create an account, and the sender of the mail it sends (invitations).

use opensend_core::Mailbox;

use super::{Reader, keyword_setting, names};

/// `SIGNUP`: who may create an account on the sign-up page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signup {
    /// Nobody: accounts come from `opensend admin create-user`.
    Closed,
    /// Only people holding an invitation link (and the operator's command).
    Invite,
    /// Anyone who can reach the dashboard.
    Open,
}

keyword_setting!(Signup, {
    "closed" => Signup::Closed,
    "invite" => Signup::Invite,
    "open" => Signup::Open,
});

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardSettings {
    /// `SIGNUP`; unset, `open` on a local deployment and `invite` in production (see
    /// [`super::Config::signup`]).
    pub signup: Option<Signup>,
    /// `DASHBOARD_EMAIL_FROM`: the From of invitation emails; unset, `OpenSend <no-reply@APP_URL's host>`.
    pub email_from: Option<Mailbox>,
}

impl DashboardSettings {
    pub(super) fn read(r: &mut Reader) -> Self {
        Self {
            signup: r.setting(names::SIGNUP, None, |v| v.parse().map(Some)),
            email_from: r.setting(names::DASHBOARD_EMAIL_FROM, None, |v| {
                Mailbox::parse(v).map(Some).map_err(|e| {
                    format!(
                        "must be an address such as `OpenSend <no-reply@mail.example.com>`: {e}"
                    )
                })
            }),
        }
    }
}
