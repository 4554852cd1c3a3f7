"""The closed loop: did the message arrive, and did its delivery receipt come back?

Mailbox URLs (url), one reader per kind behind one interface (reader: imap, pop3, maildir, listen),
the message a case sent found by its Message-ID, RFC 3464 delivery status notifications (dsn),
DKIM and Authentication-Results on the delivered copy (auth), and the judging of both steps (judge).
"""
