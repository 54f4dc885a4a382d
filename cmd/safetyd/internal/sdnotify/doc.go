// Package sdnotify tells a service manager (systemd's Type=notify, or a
// test that started the daemon as a process) when the daemon is ready and
// when it stops, so that nobody polls /readyz to find out: READY=1 once
// every account is restored and the listener serves, STOPPING=1 when the
// ordered shutdown begins, STATUS= lines for a standby replica.
package sdnotify
