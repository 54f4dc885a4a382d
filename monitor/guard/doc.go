// Package guard keeps a Telegram account inside its budgets before
// Telegram punishes it. A Guard is a telegram.Middleware for one monitored
// account: it maps each call to an action of the limits profile
// (monitor/limits), counts the actions in sliding windows, and refuses a
// call locally, with a *BlockedError, when it would exceed a limit scaled
// by a safety margin (80% by default), when the account is frozen or
// limited and the call would write or reach strangers, or when Telegram
// has imposed a flood wait on the method that has not ended. The guard
// exists to keep accounts within Telegram's rules; it never hides or
// disguises traffic.
//
// # Installing
//
//	g, err := guard.New(acct, guard.Options{Created: created})
//	client := telegram.NewClient(appID, appHash, telegram.Options{
//		Middlewares:   []telegram.Middleware{g.Middleware(), acct.Middleware()},
//		UpdateHandler: g.Handler(dispatcher),
//	})
//
// Put the guard first (outermost): a refused call never reaches Telegram,
// so the monitor must not count it as an RPC. The account's state
// (limited, frozen, flood waits) comes from the monitor, which learns it
// from the calls' errors and from probes. Mode Observe counts and logs
// what Enforce would refuse without changing any call, to try a profile
// or a margin on live traffic first.
//
// # Calls and actions
//
//   - Every request that sends a message to a peer (messages.sendMessage,
//     sendMedia, sendMultiMedia, sendInlineBotResult, forwardMessages,
//     sendScheduledMessages, sendQuickReplyMessages,
//     sendScreenshotNotification, sendBotRequestedPeer, sendWebViewData,
//     startBot, requestEncryption) to a user: dm_contact when the user is
//     a known mutual contact or wrote first, dm_non_contact otherwise; to
//     a group or channel: dm_contact; to Saved Messages: no DM. A forward
//     also spends forward_messages, one per message forwarded. Secret-chat
//     messages spend dm_contact; reactions and votes spend nothing but are
//     refused while frozen.
//   - contacts.resolveUsername: resolve_username; channels.joinChannel:
//     join_channel; contacts.importContacts: import_contacts, one per
//     contact; messages.createChat, channels.createChannel: create_chat;
//     contacts.search: search_contacts; auth.sendCode: send_code.
//   - channels.inviteToChannel, messages.addChatUser and the users of
//     messages.createChat: invite, one per user who is not a known mutual
//     contact.
//   - Messages, media and forwards to SpamBot (user 178220800) and
//     resolving its username never count and are never refused for being
//     frozen, limited or over budget: SpamBot is where a limited or frozen
//     account learns its status. Other calls involving SpamBot (its
//     history, contacts.unblock) are ordinary calls, held back only by a
//     flood wait on their method.
//   - Every other call spends nothing; it is only held back by an active
//     flood wait on its own method.
//
// The order of checks is: frozen (every budgeted call except
// auth.sendCode, and every message except to SpamBot), limited
// (dm_non_contact, invites of strangers), flood wait, budgets. With
// Options.MaxWait, a call whose flood wait ends within MaxWait waits for
// it on the account's clock instead of failing.
//
// # What the guard knows, and what it does not
//
// Contacts are learned from the account's own traffic only:
// contacts.getContacts results (the complete list: mutual flags are reset
// from it), any full user object in a result (its mutual_contact flag,
// set or cleared), and private incoming messages (in results of
// messages.getHistory, updates.getDifference, ... and in updates passed to
// Observe or Handler), whose senders count as having written first.
// Imported contacts are contacts but not mutual ones until Telegram says
// so. Contacts added or removed from another device are unknown until a
// call returns those users or getContacts runs again. Mostly this errs on
// the strict side — a guard that knows too few contacts treats more
// messages as cold DMs — with one exception: a mutual contact removed on
// another device still counts as mutual until the next getContacts. The sets are
// bounded (100,000 users); past that, new users are not learned.
// Bots are users like any other: the first message to a bot counts as a
// cold DM until the bot answers.
//
// Actions are recorded when the call succeeds, never when it fails: an RPC
// error (FLOOD_WAIT, PEER_FLOOD, PRIVACY_...) means Telegram did not
// perform it. A call that fails without an RPC error (connection lost,
// context cancelled) is not recorded either, although it may have reached
// Telegram; the margin absorbs such rare misses. Calls admitted but not
// yet returned count against the budget while they run, so concurrent
// calls cannot overshoot it together. Actions made by other clients of the
// same account are invisible to the guard, which is why the margin exists.
//
// The guard's clock is the account's (monitor.Options.Clock), so tests and
// simulations run it on virtual time.
//
// # Metrics
//
// tgsafety_guard_blocked_total{account,method,reason} counts refusals; in
// observe mode it counts the calls that would have been refused.
// tgsafety_budget_used_ratio{account,budget} is, per action, the highest
// fraction used among its limits after the margin, computed at scrape
// time. Metrics returns their definitions.
package guard
