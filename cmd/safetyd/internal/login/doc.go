// Package login is `safetyd login`: sign one configured account in from
// the terminal (the code Telegram sends, then the 2FA password if set),
// saying what it does while it connects, and store the session file
// (0600) where `safetyd run` reads it. It claims success only once that
// file is on disk.
package login
