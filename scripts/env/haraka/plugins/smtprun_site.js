// smtprun's test site on Haraka, which has no local users or delivery of its own: the users are those of
// config/auth_flat_file.ini (alice, bob), in the domains of config/host_list; postmaster and abuse are
// alice's (RFC 5321 §4.5.1). Another user there is refused; another domain too, unless the client
// authenticated. Each message lands in the Maildir home/<user>/Maildir beside the config folder.
'use strict'

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const ALIASES = { postmaster: 'alice', abuse: 'alice' }
let sequence = 0

// user@host of an envelope address (a getter in Haraka 3.3's @haraka/email-address, a method before it)
const bare = (address) => (typeof address.address === 'function' ? address.address() : address.address)

exports.register = function () {
    this.load_site()
    this.home = path.resolve(process.env.HARAKA || '.', '..', 'home')
}

exports.load_site = function () {
    this.domains = this.config.get('host_list', 'list', () => this.load_site()).map((d) => d.toLowerCase())
    const auth = this.config.get('auth_flat_file.ini', () => this.load_site())
    this.users = Object.keys(auth.users || {}).map((u) => u.toLowerCase())
}

exports.local_user = function (address) {
    const user = (address.user || '').toLowerCase()
    const name = ALIASES[user] || user
    return this.users.includes(name) ? name : null
}

exports.hook_rcpt = function (next, connection, params) {
    const rcpt = params[0]
    const domain = (rcpt.host || '').toLowerCase()
    if (!this.domains.includes(domain)) {
        if (connection.relaying) return next(OK)
        return next(DENY, `5.7.1 Relaying denied for <${bare(rcpt)}>`)
    }
    const user = this.local_user(rcpt)
    if (!user) return next(DENY, `5.1.1 No such user: <${bare(rcpt)}>`)
    connection.transaction.notes.local_users ??= []
    connection.transaction.notes.local_users.push(user)
    next(OK)
}

// Maildir delivery: written once to the first user's tmp/, then linked into each user's new/.
exports.hook_queue = function (next, connection) {
    const transaction = connection.transaction
    const users = [...new Set(transaction.notes.local_users || [])]
    if (users.length === 0) return next(DENY, '5.7.1 No local recipient (relaying is not delivered here)')
    const name = `${Date.now()}.P${process.pid}Q${++sequence}.${os.hostname()}`
    const first = path.join(this.home, users[0], 'Maildir')
    const tmp = path.join(first, 'tmp', name)
    const out = fs.createWriteStream(tmp, { mode: 0o600 })
    out.on('error', (err) => {
        connection.logerror(this, `cannot write ${tmp}: ${err.message}`)
        next(DENYSOFT, '4.3.0 Mailbox temporarily unavailable')
    })
    out.on('finish', () => {
        try {
            for (const user of users) fs.linkSync(tmp, path.join(this.home, user, 'Maildir', 'new', name))
            fs.unlinkSync(tmp)
        } catch (err) {
            connection.logerror(this, `cannot deliver ${tmp}: ${err.message}`)
            return next(DENYSOFT, '4.3.0 Mailbox temporarily unavailable')
        }
        next(OK, `Message queued as ${transaction.uuid}`)
    })
    out.write(`Return-Path: <${bare(transaction.mail_from)}>\n`)
    transaction.message_stream.pipe(out, { line_endings: '\n', dot_stuffed: false })
}
