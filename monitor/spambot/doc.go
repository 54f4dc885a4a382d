// Package spambot classifies the replies of Telegram's @SpamBot, the only
// place where Telegram tells an account in words whether it is limited, until
// when, or frozen.
//
// The SpamBot checkers that circulate as scripts look for an English substring
// such as "free as a bird" or "no limits" and treat every other reply as
// "free". That is exactly backwards for a safety tool: an account whose client
// language is Russian, a reworded reply, a "Please use buttons" answer or a
// complaint acknowledgement all come out "free", and a burned account stays in
// rotation. This package does neither of those things:
//
//   - Parse normalises the text first (typographic apostrophes, non-breaking
//     spaces, line breaks, letter case), so cosmetic changes do not matter, and
//     it knows the English and the Russian replies.
//   - It tests the most severe states first (frozen, limited until a date,
//     limited with no date) and "free" last, with whole phrases rather than
//     word stems: the Russian "free" reply contains "ограничений", which
//     shares its stem with the limited replies.
//   - It reads the release date of a temporary limit, which SpamBot writes in
//     English ("6 Jun 2024, 20:20 UTC", layout DateLayout) even inside Russian
//     text, and refuses to guess when that date is missing or malformed.
//   - Anything it does not recognise is Unknown, with a Reason and the raw text
//     kept for the operator. It never reports Free by default.
//
// SpamBot's algorithmic reply ("some actions can trigger a harsh response from
// our anti-spam systems") says the account is limited but gives no release
// date; tgsafety treats it, like every limited reply without a date, as
// open-ended (LimitedPermanent) until a later probe says otherwise.
//
// Free is necessary, not sufficient: a PEER_FLOOD seen since the last probe
// overrides it. Parse only classifies text and sends nothing, so it can be
// tested against every known reply without a Telegram connection.
package spambot
