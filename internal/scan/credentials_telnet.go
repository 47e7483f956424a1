package scan

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"
)

// telnetAction is what the Telnet login state machine wants done next.
type telnetAction int

const (
	telnetWait     telnetAction = iota // read more
	telnetSendUser                     // send the username
	telnetSendPass                     // send the password
	telnetSuccess                      // a shell prompt: logged in
	telnetFailure                      // the login was refused
	telnetLocked                       // the device says it is locking logins out
)

// telnetLogin follows a Telnet login dialogue from the server's text (with
// Telnet commands already stripped): a "login:" or "Username:" prompt, then
// "Password:", then either a shell prompt (#, $, >) or a refusal. Busybox
// telnetd with login(1) asks "<host> login: " and answers a bad password
// with "Login incorrect" and a new login prompt after a delay.
type telnetLogin struct {
	stage int    // 0 before the username, 1 after it, 2 after the password
	text  []byte // text since the last thing sent, at most 4 KiB
}

// Feed consumes server text and returns the next action.
func (l *telnetLogin) Feed(b []byte) telnetAction {
	l.text = append(l.text, b...)
	if len(l.text) > maxBanner {
		l.text = l.text[len(l.text)-maxBanner:]
	}
	t := strings.ToLower(printable(l.text))
	if lockoutText(t) {
		return telnetLocked
	}
	tail := strings.TrimRight(t, " \t")
	loginPrompt := hasAnySuffix(tail, "login:", "username:", "user name:", "user:")
	passPrompt := hasAnySuffix(tail, "password:", "passwd:")
	refused := containsAny(t, "incorrect", "failed", "denied", "invalid", "bad password", "wrong")
	shell := hasAnySuffix(tail, "#", "$", ">") && !refused
	switch l.stage {
	case 0:
		switch {
		case loginPrompt:
			return l.sent(1, telnetSendUser)
		case passPrompt: // a device that asks only for a password
			return l.sent(2, telnetSendPass)
		}
	case 1:
		switch {
		case passPrompt:
			return l.sent(2, telnetSendPass)
		case refused || loginPrompt:
			return telnetFailure
		case shell: // the account has no password
			return telnetSuccess
		}
	case 2:
		switch {
		case refused || loginPrompt || passPrompt:
			return telnetFailure
		case shell:
			return telnetSuccess
		}
	}
	return telnetWait
}

func (l *telnetLogin) sent(stage int, a telnetAction) telnetAction {
	l.stage = stage
	l.text = l.text[:0]
	return a
}

// Settled is called when the server has gone quiet: after the password,
// text without any refusal and without a new prompt counts as a login.
func (l *telnetLogin) Settled() telnetAction {
	if l.stage != 2 {
		return telnetFailure
	}
	t := strings.TrimSpace(strings.ToLower(printable(l.text)))
	if t == "" || containsAny(t, "incorrect", "failed", "denied", "invalid", "login:", "password:", "wrong") {
		return telnetFailure
	}
	return telnetSuccess
}

func hasAnySuffix(s string, suffixes ...string) bool {
	for _, x := range suffixes {
		if strings.HasSuffix(s, x) {
			return true
		}
	}
	return false
}

func containsAny(s string, words ...string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// loginTelnet tries one credential on a fresh Telnet connection. It never
// types anything after a successful login: it closes the connection.
func (s *scanner) loginTelnet(ctx context.Context, target string, c Credential, _ *CredentialFinding) (bool, error) {
	dctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	conn, err := s.dial(dctx, "tcp", target)
	cancel()
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var neg telnetNegotiation
	var login telnetLogin
	// Busybox login waits about 3 s before saying "Login incorrect".
	quiet := max(s.opts.ReadTimeout, 2*time.Second) + 2*time.Second
	buf := make([]byte, 1024)
	for {
		_ = conn.SetReadDeadline(time.Now().Add(quiet))
		n, rerr := conn.Read(buf)
		text, reply := neg.Feed(buf[:n])
		if len(reply) > 0 {
			if _, err := conn.Write(reply); err != nil {
				return false, err
			}
		}
		action := login.Feed(text)
		if n == 0 && rerr != nil {
			var ne net.Error
			if errors.As(rerr, &ne) && ne.Timeout() && ctx.Err() == nil {
				action = login.Settled()
			} else if login.stage == 2 {
				return false, nil // closed after the password: refused
			} else {
				return false, rerr
			}
		}
		switch action {
		case telnetSendUser:
			err = writeLine(conn, c.Username)
		case telnetSendPass:
			err = writeLine(conn, c.Password)
		case telnetSuccess:
			return true, nil
		case telnetFailure:
			return false, nil
		case telnetLocked:
			return false, lockoutErr("the telnet server says logins are locked")
		}
		if err != nil {
			return false, err
		}
	}
}

func writeLine(conn net.Conn, s string) error {
	_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := conn.Write([]byte(s + "\r\n"))
	return err
}
