//! MCP log levels (`logging/setLevel`, `notifications/message`): RFC 5424's severities, least
//! severe first, so that "at or above a session's level" is a comparison.

/// One severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Debug = 1,
    Info,
    Notice,
    Warning,
    Error,
    Critical,
    Alert,
    Emergency,
}

impl Level {
    pub const ALL: [Level; 8] = [
        Level::Debug,
        Level::Info,
        Level::Notice,
        Level::Warning,
        Level::Error,
        Level::Critical,
        Level::Alert,
        Level::Emergency,
    ];

    pub fn parse(text: &str) -> Option<Level> {
        Self::ALL.into_iter().find(|l| l.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Notice => "notice",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Critical => "critical",
            Level::Alert => "alert",
            Level::Emergency => "emergency",
        }
    }

    /// As stored in an atomic (0 is "no level set").
    pub fn to_u8(self) -> u8 {
        self as u8
    }

    pub fn from_u8(n: u8) -> Option<Level> {
        Self::ALL.into_iter().find(|l| l.to_u8() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_order_by_severity_and_round_trip() {
        assert!(Level::Debug < Level::Warning && Level::Warning < Level::Emergency);
        for l in Level::ALL {
            assert_eq!(Level::parse(l.as_str()), Some(l));
            assert_eq!(Level::from_u8(l.to_u8()), Some(l));
        }
        assert_eq!(Level::parse("verbose"), None);
        assert_eq!(Level::from_u8(0), None);
    }
}
