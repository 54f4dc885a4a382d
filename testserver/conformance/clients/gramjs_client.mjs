// GramJS (npm "telegram") against tgsafety's simulated Telegram
// (`scenario-run serve`).
//
// Usage: node gramjs_client.mjs READY_FILE PHONE [IDLE_SECONDS]
//
// READY_FILE holds the JSON line `scenario-run serve` prints when ready
// (addr, dc, public_key, login_code, usernames). The program walks through
// the conformance steps of docs/clients.md and prints one line per step:
//
//     STEP <name> ok|fail <detail as a JSON string>
//
// Before a step the server side must prepare (a ban, dropped connections) it
// prints `WAIT <name>` and reads one `GO` line from stdin. It never talks to
// Telegram: the only address it dials is the one in READY_FILE.

import { createHash, createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

import { Api, errors, TelegramClient } from 'telegram'
import { _serverKeys } from 'telegram/crypto/RSA.js'
import { NewMessage } from 'telegram/events/index.js'
import { Logger } from 'telegram/extensions/Logger.js'
import { readBigIntFromBuffer } from 'telegram/Helpers.js'
import { ConnectionTCPFull } from 'telegram/network/index.js'
import { MemorySession } from 'telegram/sessions/index.js'
import { serializeBytes } from 'telegram/tl/index.js'

const STEP_TIMEOUT = 20_000 // ms; a hung client fails its step instead of the run

// addServerKey makes GramJS trust an RSA public key (PKCS#1 PEM). GramJS
// 2.26 has no API for it: its key table maps the key's fingerprint (the
// low 64 bits of sha1(TL bytes n, TL bytes e), as a signed decimal) to n, e.
function addServerKey(pem) {
    const jwk = createPublicKey(pem).export({ format: 'jwk' })
    const n = Buffer.from(jwk.n, 'base64url')
    const e = Buffer.from(jwk.e, 'base64url')
    const sha = createHash('sha1').update(Buffer.concat([serializeBytes(n), serializeBytes(e)])).digest()
    const fingerprint = readBigIntFromBuffer(sha.subarray(12), true, true)
    _serverKeys.set(fingerprint.toString(), {
        n: readBigIntFromBuffer(n, false, false),
        e: Number(readBigIntFromBuffer(e, false, false)),
    })
}

// connectionTo is GramJS's default TCP transport dialling a fixed port:
// TelegramClient.connect() passes port 80 (443 with useWSS) whatever port
// the session holds, and reconnects reuse that port, so the connection
// class is the one place to change it. It also counts connects, so the
// idle and reconnect steps can tell a kept connection from a new one.
function connectionTo(port) {
    return class PortConnection extends ConnectionTCPFull {
        static connects = 0
        constructor(opts) {
            super({ ...opts, port })
        }
        async connect() {
            await super.connect()
            PortConnection.connects++
        }
    }
}

// StderrLogger keeps GramJS's log off stdout, which carries the step lines.
class StderrLogger extends Logger {
    log(level, message) {
        process.stderr.write(`[gramjs ${level}] ${message}\n`)
    }
}

const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()

function report(step, ok, detail = '') {
    process.stdout.write(`STEP ${step} ${ok ? 'ok' : 'fail'} ${JSON.stringify(String(detail))}\n`)
}

async function waitForGo(name) {
    process.stdout.write(`WAIT ${name}\n`)
    const { value } = await stdin.next()
    if (value?.trim() !== 'GO') throw new Error(`expected GO on stdin before ${name}, got ${JSON.stringify(value)}`)
}

function timed(promise) {
    let timer
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STEP_TIMEOUT / 1000} s`)), STEP_TIMEOUT)
    })
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

function isRpcError(e, message) {
    return e instanceof errors.RPCError && e.errorMessage === message
}

function errorDetail(e) {
    return `${e?.constructor?.name ?? 'Error'}: ${e?.message ?? e}`
}

async function main(ready, phone, idleSeconds) {
    // --- The few lines that point GramJS at the server ----------------------
    addServerKey(readFileSync(ready.public_key, 'utf8')) // trust the server's key
    const [host, port] = [ready.addr.slice(0, ready.addr.lastIndexOf(':')), Number(ready.addr.slice(ready.addr.lastIndexOf(':') + 1))]
    // No auth key: a fresh key exchange. (StringSession.save() writes the port
    // as a signed 16-bit number and throws for ports above 32767, which
    // includes every ephemeral port.)
    const session = new MemorySession()
    session.setDC(ready.dc, host, port)
    const Connection = connectionTo(port) // connect() ignores the session's port
    const client = new TelegramClient(session, 17349, 'not-a-real-hash', { // any apiId / apiHash
        connection: Connection,
        floodSleepThreshold: 0, // raise every FLOOD_WAIT instead of sleeping through it
        baseLogger: new StderrLogger('warn'),
    })
    const loginCode = ready.login_code // the DC number five times ("22222" on DC 2)
    // -------------------------------------------------------------------------

    const strangers = ready.usernames.slice(0, 8) // population users, none of them a contact
    const burst = ready.usernames.slice(8, 40)
    const replies = []
    let replyArrived = () => {}
    client.addEventHandler((event) => {
        replies.push(event.message)
        replyArrived()
    }, new NewMessage({ incoming: true }))

    const passed = {}
    async function step(name, needs, fn) {
        const missing = needs.filter((n) => !passed[n])
        if (missing.length > 0) {
            passed[name] = false
            report(name, false, `not run: needs ${missing.join(', ')}`)
            return
        }
        try {
            const detail = await fn()
            passed[name] = true
            report(name, true, detail)
        } catch (e) { // a step's failure is data, not the end of the run
            passed[name] = false
            report(name, false, errorDetail(e))
        }
    }

    const sent = {}
    const peers = {}

    await step('connect', [], async () => {
        if (!(await timed(client.connect()))) throw new Error('connect() returned false')
        return `connected to ${ready.addr} DC ${ready.dc}`
    })
    await step('send_code', ['connect'], async () => {
        const r = await timed(client.sendCode({ apiId: 17349, apiHash: 'not-a-real-hash' }, phone))
        sent.hash = r.phoneCodeHash
        return `isCodeViaApp=${r.isCodeViaApp}`
    })
    await step('sign_up', ['send_code'], async () => {
        const r = await timed(client.invoke(new Api.auth.SignIn({
            phoneNumber: phone, phoneCodeHash: sent.hash, phoneCode: loginCode,
        })))
        if (r instanceof Api.auth.Authorization) return `signed in as user ${r.user.id}`
        if (!(r instanceof Api.auth.AuthorizationSignUpRequired)) throw new Error(`auth.signIn returned ${r?.className}`)
        const up = await timed(client.invoke(new Api.auth.SignUp({
            phoneNumber: phone, phoneCodeHash: sent.hash, firstName: 'Conformance', lastName: 'GramJS',
        })))
        return `signed up as user ${up.user.id}`
    })
    await step('get_me', ['sign_up'], async () => {
        const me = await timed(client.getMe())
        if (!(me instanceof Api.User) || me.phone !== phone) throw new Error(`getMe returned ${me?.className}`)
        return `user ${me.id} +${me.phone}`
    })
    await step('resolve', ['sign_up'], async () => {
        for (const username of ['SpamBot', ...strangers]) {
            const r = await timed(client.invoke(new Api.contacts.ResolveUsername({ username })))
            const u = r.users[0]
            peers[username] = new Api.InputPeerUser({ userId: u.id, accessHash: u.accessHash })
        }
        return `@SpamBot and ${strangers.length} strangers`
    })
    await step('peer_flood', ['resolve'], async () => {
        for (const [i, username] of strangers.entries()) {
            try {
                await timed(client.sendMessage(peers[username], { message: 'Hello from the conformance suite' }))
            } catch (e) {
                if (isRpcError(e, 'PEER_FLOOD')) return `RPCError PEER_FLOOD (code ${e.code}) after ${i} cold DMs`
                throw e
            }
        }
        throw new Error(`${strangers.length} cold DMs sent, no PEER_FLOOD`)
    })
    await step('flood_wait', ['sign_up'], async () => {
        for (const [i, username] of burst.entries()) {
            try {
                await timed(client.invoke(new Api.contacts.ResolveUsername({ username })))
            } catch (e) {
                if (!(e instanceof errors.FloodWaitError)) throw e
                if (!(e.seconds > 0)) throw new Error(`FloodWaitError with seconds=${e.seconds}`)
                return `FloodWaitError.seconds=${e.seconds} after ${i} resolves`
            }
        }
        throw new Error(`${burst.length} resolves, no FloodWaitError`)
    })
    await step('spambot_update', ['resolve'], async () => {
        const bot = peers.SpamBot
        replies.length = 0
        const fromBot = () => replies.find((m) => m.senderId?.equals(bot.userId))
        const arrived = new Promise((resolve) => {
            replyArrived = () => { if (fromBot()) resolve() }
        })
        await timed(client.sendMessage(bot, { message: '/start' }))
        await timed(arrived)
        return fromBot().message
    })
    await step('spambot_history', ['resolve'], async () => {
        const msgs = await timed(client.getMessages(peers.SpamBot, { limit: 1 }))
        if (msgs.length !== 1 || msgs[0].out) throw new Error('the newest message in the SpamBot chat is not its reply')
        return msgs[0].message
    })
    await step('idle', ['sign_up'], async () => {
        const before = Connection.connects
        // Real time: the server's read timeout is what is tested.
        await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
        await timed(client.getMe())
        if (Connection.connects !== before) {
            throw new Error(`the connection was replaced during ${idleSeconds} s idle (${Connection.connects - before} reconnects); getMe answered`)
        }
        return `getMe answered after ${idleSeconds} s idle on the same connection`
    })
    await step('ban', ['sign_up'], async () => {
        await waitForGo('ban')
        try {
            await timed(client.getMe())
        } catch (e) {
            if (isRpcError(e, 'USER_DEACTIVATED_BAN')) return `RPCError USER_DEACTIVATED_BAN (code ${e.code})`
            throw e
        }
        throw new Error('getMe succeeded after the ban')
    })
    await step('reconnect', ['sign_up'], async () => {
        const before = Connection.connects
        await waitForGo('reconnect')
        await timed(client.getMe())
        if (Connection.connects === before) throw new Error('getMe answered but the client never reconnected')
        return `${Connection.connects - before} reconnect(s), getMe answered`
    })
    await client.destroy().catch(() => {})
}

const [readyFile, phone, idle = '120'] = process.argv.slice(2)
if (!readyFile || !phone) {
    process.stderr.write('usage: node gramjs_client.mjs READY_FILE PHONE [IDLE_SECONDS]\n')
    process.exit(2)
}
await main(JSON.parse(readFileSync(readyFile, 'utf8')), phone, Number(idle))
process.exit(0) // GramJS keeps timers (its update loop) alive after destroy()
