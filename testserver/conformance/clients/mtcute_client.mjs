// mtcute (@mtcute/node) against tgsafety's simulated Telegram
// (`scenario-run serve`).
//
// Usage: node mtcute_client.mjs READY_FILE PHONE [IDLE_SECONDS]
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

import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

import { MemoryStorage, networkMiddlewares, TelegramClient, tl } from '@mtcute/node'
import { addPublicKey, NodeCryptoProvider } from '@mtcute/node/utils.js'

// mtcute logs with console.log; stdout carries the step lines.
console.log = console.error

const STEP_TIMEOUT = 20_000 // ms; a hung client fails its step instead of the run

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

function errorDetail(e) {
    return `${e?.constructor?.name ?? 'Error'}: ${e?.message ?? e}`
}

async function main(ready, phone, idleSeconds) {
    // --- The few lines that point mtcute at the server ----------------------
    const host = ready.addr.slice(0, ready.addr.lastIndexOf(':'))
    const port = Number(ready.addr.slice(ready.addr.lastIndexOf(':') + 1))
    const dc = { id: ready.dc, ipAddress: host, port }
    const client = new TelegramClient({
        apiId: 17349, apiHash: 'not-a-real-hash', // any apiId / apiHash
        storage: new MemoryStorage(), // no auth key: a fresh key exchange
        defaultDcs: { main: dc, media: dc },
        network: {
            // raise every FLOOD_WAIT instead of sleeping through it
            middlewares: networkMiddlewares.basic({ floodWaiter: { maxWait: 0 } }),
        },
        logLevel: 2, // warnings and errors (LogManager.WARN)
    })
    addPublicKey(new NodeCryptoProvider(), readFileSync(ready.public_key, 'utf8')) // trust the server's key
    const loginCode = ready.login_code // the DC number five times ("22222" on DC 2)
    // -------------------------------------------------------------------------

    // Counts the main connection's (re)connects, so the idle and reconnect
    // steps can tell a kept connection from a new one.
    let connects = 0
    client.onConnectionState.add((state) => {
        if (state === 'connecting') connects++
    })

    const strangers = ready.usernames.slice(0, 8) // population users, none of them a contact
    const burst = ready.usernames.slice(8, 40)
    const replies = []
    let replyArrived = () => {}
    client.onNewMessage.add((msg) => {
        replies.push(msg)
        replyArrived()
    })

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
        await timed(client.connect())
        return `connected to ${ready.addr} DC ${ready.dc}`
    })
    await step('send_code', ['connect'], async () => {
        const r = await timed(client.sendCode({ phone }))
        if (!r.phoneCodeHash) throw new Error(`sendCode returned ${r?.constructor?.name}`)
        sent.hash = r.phoneCodeHash
        return `type=${r.type}`
    })
    await step('sign_up', ['send_code'], async () => {
        const r = await timed(client.call({
            _: 'auth.signIn', phoneNumber: phone, phoneCodeHash: sent.hash, phoneCode: loginCode,
        }))
        let auth = r
        if (r._ === 'auth.authorizationSignUpRequired') {
            auth = await timed(client.call({
                _: 'auth.signUp', phoneNumber: phone, phoneCodeHash: sent.hash, firstName: 'Conformance', lastName: 'mtcute',
            }))
        }
        const user = await timed(client.notifyLoggedIn(auth))
        await timed(client.startUpdatesLoop())
        return `${r === auth ? 'signed in' : 'signed up'} as user ${user.id}`
    })
    await step('get_me', ['sign_up'], async () => {
        const me = await timed(client.getMe())
        if (me.phoneNumber !== phone) throw new Error(`getMe returned user ${me.id} with another phone`)
        return `user ${me.id} +${me.phoneNumber}`
    })
    await step('resolve', ['sign_up'], async () => {
        for (const username of ['SpamBot', ...strangers]) {
            const r = await timed(client.call({ _: 'contacts.resolveUsername', username }))
            const u = r.users[0]
            peers[username] = { _: 'inputPeerUser', userId: u.id, accessHash: u.accessHash }
        }
        return `@SpamBot and ${strangers.length} strangers`
    })
    await step('peer_flood', ['resolve'], async () => {
        for (const [i, username] of strangers.entries()) {
            try {
                await timed(client.sendText(peers[username], 'Hello from the conformance suite'))
            } catch (e) {
                if (tl.RpcError.is(e, 'PEER_FLOOD')) return `RpcError PEER_FLOOD (code ${e.code}) after ${i} cold DMs`
                throw e
            }
        }
        throw new Error(`${strangers.length} cold DMs sent, no PEER_FLOOD`)
    })
    await step('flood_wait', ['sign_up'], async () => {
        for (const [i, username] of burst.entries()) {
            try {
                await timed(client.call({ _: 'contacts.resolveUsername', username }))
            } catch (e) {
                if (!tl.RpcError.is(e, 'FLOOD_WAIT_%d')) throw e
                if (!(e.seconds > 0)) throw new Error(`FLOOD_WAIT with seconds=${e.seconds}`)
                return `RpcError FLOOD_WAIT_%d seconds=${e.seconds} after ${i} resolves`
            }
        }
        throw new Error(`${burst.length} resolves, no FLOOD_WAIT`)
    })
    await step('spambot_update', ['resolve'], async () => {
        const bot = peers.SpamBot
        replies.length = 0
        const fromBot = () => replies.find((m) => m.sender.id === bot.userId)
        const arrived = new Promise((resolve) => {
            replyArrived = () => { if (fromBot()) resolve() }
        })
        await timed(client.sendText(bot, '/start'))
        await timed(arrived)
        return fromBot().text
    })
    await step('spambot_history', ['resolve'], async () => {
        const msgs = await timed(client.getHistory(peers.SpamBot, { limit: 1 }))
        if (msgs.length !== 1 || msgs[0].isOutgoing) throw new Error('the newest message in the SpamBot chat is not its reply')
        return msgs[0].text
    })
    await step('idle', ['sign_up'], async () => {
        const before = connects
        // Real time: the server's read timeout is what is tested.
        await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000))
        await timed(client.getMe())
        if (connects !== before) {
            throw new Error(`the connection was replaced during ${idleSeconds} s idle (${connects - before} reconnects); getMe answered`)
        }
        return `getMe answered after ${idleSeconds} s idle on the same connection`
    })
    await step('ban', ['sign_up'], async () => {
        await waitForGo('ban')
        try {
            await timed(client.call({ _: 'users.getUsers', id: [{ _: 'inputUserSelf' }] }))
        } catch (e) {
            if (tl.RpcError.is(e, 'USER_DEACTIVATED_BAN')) return `RpcError USER_DEACTIVATED_BAN (code ${e.code})`
            throw e
        }
        throw new Error('users.getUsers(self) succeeded after the ban')
    })
    await step('reconnect', ['sign_up'], async () => {
        const before = connects
        await waitForGo('reconnect')
        await timed(client.getMe())
        if (connects === before) throw new Error('getMe answered but the client never reconnected')
        return `${connects - before} reconnect(s), getMe answered`
    })
    await client.destroy().catch(() => {})
}

const [readyFile, phone, idle = '120'] = process.argv.slice(2)
if (!readyFile || !phone) {
    process.stderr.write('usage: node mtcute_client.mjs READY_FILE PHONE [IDLE_SECONDS]\n')
    process.exit(2)
}
await main(JSON.parse(readFileSync(readyFile, 'utf8')), phone, Number(idle))
process.exit(0)
