//! The messages Keyway sends: askama templates under templates/email/, an .html and a .txt of
//! each on one layout. Each says who asked, from which address and when, and what to do if it
//! was not you.

use askama::Template;

/// A message rendered for sending.
#[derive(Clone)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders the text and HTML templates of one message.
macro_rules! message {
    ($data:ident, $text:ident, $html:ident, $path_text:literal, $path_html:literal) => {
        #[derive(Template)]
        #[template(path = $path_text, escape = "none")]
        struct $text<'a> {
            m: &'a $data,
            #[allow(dead_code)]
            subject: &'a str,
        }

        #[derive(Template)]
        #[template(path = $path_html)]
        struct $html<'a> {
            m: &'a $data,
            subject: &'a str,
        }

        impl $data {
            fn render_both(&self, subject: String) -> anyhow::Result<Rendered> {
                Ok(Rendered {
                    text: $text {
                        m: self,
                        subject: &subject,
                    }
                    .render()?,
                    html: $html {
                        m: self,
                        subject: &subject,
                    }
                    .render()?,
                    subject,
                })
            }
        }
    };
}

/// A sign-in link.
pub struct MagicLink {
    pub issuer: String,
    pub username: String,
    pub link: String,
    pub minutes: u64,
    /// The application the sign-in is for, if one waits.
    pub app: Option<String>,
    /// Where and when the request came from.
    pub ip: String,
    pub when: String,
}

message!(
    MagicLink,
    MagicLinkText,
    MagicLinkHtml,
    "email/magic_link.txt",
    "email/magic_link.html"
);

impl MagicLink {
    pub fn render(&self) -> anyhow::Result<Rendered> {
        self.render_both("Your sign-in link".into())
    }
}

/// An invitation sent by email.
pub struct Invitation {
    pub issuer: String,
    /// Who invites (a name, or "An administrator").
    pub inviter: String,
    pub link: String,
    pub is_admin: bool,
    pub expires: String,
}

message!(
    Invitation,
    InvitationText,
    InvitationHtml,
    "email/invitation.txt",
    "email/invitation.html"
);

impl Invitation {
    pub fn render(&self) -> anyhow::Result<Rendered> {
        self.render_both("You are invited to Keyway".into())
    }
}

/// A message whose point is one link: verify an address, confirm a new one, recover an account.
pub struct Action {
    pub issuer: String,
    pub subject: String,
    pub heading: String,
    /// Who asked, from where and when.
    pub lead: String,
    pub button: String,
    pub link: String,
    pub notes: Vec<String>,
    /// A link that cancels what was asked.
    pub cancel: Option<String>,
}

message!(
    Action,
    ActionText,
    ActionHtml,
    "email/action.txt",
    "email/action.html"
);

impl Action {
    pub fn render(&self) -> anyhow::Result<Rendered> {
        self.render_both(self.subject.clone())
    }
}

/// A security notice: something changed on the account.
pub struct Notice {
    pub issuer: String,
    pub heading: String,
    pub what: String,
    pub ip: String,
    pub when: String,
}

message!(
    Notice,
    NoticeText,
    NoticeHtml,
    "email/notice.txt",
    "email/notice.html"
);

impl Notice {
    pub fn render(&self) -> anyhow::Result<Rendered> {
        self.render_both(format!("Security notice: {}", self.heading))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_link_says_who_asked_from_where_and_when_and_what_if_not_you() {
        let r = MagicLink {
            issuer: "https://id.example.com".into(),
            username: "alice".into(),
            link: "https://id.example.com/signin/email/abc?x=1&y=2".into(),
            minutes: 15,
            app: Some("Wiki & Co".into()),
            ip: "203.0.113.7".into(),
            when: "2026-12-01 19:05 UTC".into(),
        }
        .render()
        .unwrap();
        for body in [&r.text, &r.html] {
            assert!(
                body.contains("alice") && body.contains("203.0.113.7"),
                "{body}"
            );
            assert!(body.contains("2026-12-01 19:05 UTC") && body.contains("15 minutes"));
            assert!(body.contains("Not you?"));
        }
        // The text part is not HTML-escaped; the HTML part is.
        assert!(
            r.text
                .contains("https://id.example.com/signin/email/abc?x=1&y=2")
        );
        assert!(r.text.contains("Wiki & Co"));
        assert!(
            r.html.contains("Wiki &#38; Co") || r.html.contains("Wiki &amp; Co"),
            "{}",
            r.html
        );
    }
}
