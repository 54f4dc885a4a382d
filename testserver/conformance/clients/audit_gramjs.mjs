// A careful GramJS program, audited by `scenario-run audit` (docs/audit.md):
//
//     scenario-run audit --for 50s -- node testserver/conformance/clients/audit_gramjs.mjs
//
// It drives every account the audit gives it (TGSAFETY_ACCOUNTS and the
// TGSAFETY_ACCOUNT_<n>_* variables) the way a safe program does: it waits
// out FLOOD_WAIT, writes to no more strangers after PEER_FLOOD, writes
// nothing once frozen, and stops an account at USER_DEACTIVATED_BAN,
// SESSION_REVOKED or AUTH_KEY_UNREGISTERED. Between those it reads now and
// then until the audit stops it (SIGTERM after --for). It lives beside the
// conformance clients because it needs their pinned npm packages.

import { createHash, createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'

import { Api, errors, TelegramClient } from 'telegram'
import { AuthKey } from 'telegram/crypto/AuthKey.js'
import { _serverKeys } from 'telegram/crypto/RSA.js'
import { Logger } from 'telegram/extensions/Logger.js'
import { readBigIntFromBuffer } from 'telegram/Helpers.js'
import { ConnectionTCPFull } from 'telegram/network/index.js'
import { MemorySession } from 'telegram/sessions/index.js'
import { serializeBytes } from 'telegram/tl/index.js'

const env = process.env
const STOP = ['USER_DEACTIVATED_BAN', 'USER_DEACTIVATED', 'SESSION_REVOKED', 'AUTH_KEY_UNREGISTERED']

class Stopped extends Error {}

// The server's key, in case GramJS ever needs a fresh key exchange (the
// audit's sessions come with an auth key already).
function addServerKey(pem) {
    const jwk = createPublicKey(pem).export({ format: 'jwk' })
    const n = Buffer.from(jwk.n, 'base64url')
    const e = Buffer.from(jwk.e, 'base64url')
    const sha = createHash('sha1').update(Buffer.concat([serializeBytes(n), serializeBytes(e)])).digest()
    _serverKeys.set(readBigIntFromBuffer(sha.subarray(12), true, true).toString(), {
        n: readBigIntFromBuffer(n, false, false),
        e: Number(readBigIntFromBuffer(e, false, false)),
    })
}

// GramJS 2.26 dials port 80 whatever the session says: the connection
// class is the one place to set the real port (docs/clients.md).
function connectionTo(port) {
    return class PortConnection extends ConnectionTCPFull {
        constructor(opts) {
            super({ ...opts, port })
        }
    }
}

// Quiet: the program's own lines are what the audit's report shows.
class StderrLogger extends Logger {
    log(level, message) {
        process.stderr.write(`[gramjs ${level}] ${message}\n`)
    }
}

const log = (acct, msg) => process.stdout.write(`${acct}: ${msg}\n`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const is = (e, ...messages) => e instanceof errors.RPCError && messages.includes(e.errorMessage)

// careful runs one request the careful way and returns its result, or
// undefined when Telegram refused it for good.
async function careful(acct, what, fn, state) {
    for (;;) {
        try {
            return await fn()
        } catch (e) {
            if (e instanceof errors.FloodWaitError) {
                log(acct, `${what}: FLOOD_WAIT, waiting ${e.seconds} s`)
                await sleep(e.seconds * 1000 + 500)
                continue
            }
            if (is(e, 'PEER_FLOOD')) {
                log(acct, `${what}: PEER_FLOOD, no more messages to strangers`)
                state.limited = true
            } else if (is(e, 'FROZEN_METHOD_INVALID')) {
                log(acct, `${what}: frozen, no more writes`)
                state.frozen = true
            } else if (is(e, ...STOP)) {
                log(acct, `${what}: ${e.errorMessage}; stopping this account`)
                throw new Stopped()
            } else {
                log(acct, `${what}: ${e.errorMessage ?? e.message}`)
            }
            return undefined
        }
    }
}

async function drive(n, strangers, stopping) {
    const p = `TGSAFETY_ACCOUNT_${n}_`
    const acct = env[p + 'NAME']
    const contacts = (env[p + 'CONTACTS'] ?? '').split(',').filter(Boolean)
    // The audit's ready session: the server's address and the account's
    // auth key. Any apiId/apiHash works there.
    const session = new MemorySession()
    session.setDC(Number(env.TGSAFETY_DC), env.TGSAFETY_HOST, Number(env.TGSAFETY_PORT))
    const key = new AuthKey()
    await key.setKey(Buffer.from(env[p + 'AUTH_KEY'], 'hex'))
    session.setAuthKey(key)
    const client = new TelegramClient(session, Number(env.TGSAFETY_APP_ID), env.TGSAFETY_APP_HASH, {
        connection: connectionTo(Number(env.TGSAFETY_PORT)),
        floodSleepThreshold: 0, // every FLOOD_WAIT reaches careful()
        baseLogger: new StderrLogger('error'),
    })
    const state = { limited: false, frozen: false }
    const resolve = async (username) => {
        const r = await client.invoke(new Api.contacts.ResolveUsername({ username }))
        const u = r.users[0]
        return new Api.InputPeerUser({ userId: u.id, accessHash: u.accessHash })
    }
    await client.connect()
    try {
        // Start-up: a few lookups, spaced out (no resolve burst).
        const users = []
        for (const name of strangers.slice(0, 6)) {
            const u = await careful(acct, 'resolve', () => resolve(name), state)
            if (u) users.push(u)
            await sleep(200)
        }
        const friends = []
        for (const name of contacts.slice(0, 2)) {
            const u = await careful(acct, 'resolve a contact', () => resolve(name), state)
            if (u) friends.push(u)
        }
        // Work: a message every few seconds (to strangers until PEER_FLOOD,
        // then to contacts only; nothing once frozen), reads in between.
        for (let tick = 0; !stopping.done; tick++) {
            if (tick % 3 === 0 && !state.frozen) {
                if (!state.limited && users.length > 0) {
                    const u = users.shift()
                    await careful(acct, 'message a stranger', () => client.sendMessage(u, { message: 'hello' }), state)
                } else if (friends.length > 0) {
                    const f = friends[tick % friends.length]
                    await careful(acct, 'message a contact', () => client.sendMessage(f, { message: 'hi' }), state)
                }
            } else if (tick % 2) {
                await careful(acct, 'read', () => client.invoke(new Api.users.GetUsers({ id: [new Api.InputUserSelf()] })), state)
            } else {
                await careful(acct, 'read', () => client.invoke(new Api.help.GetConfig()), state)
            }
            await sleep(2000)
        }
    } catch (e) {
        if (!(e instanceof Stopped)) throw e
    } finally {
        await client.destroy()
    }
    log(acct, 'stopped')
}

addServerKey(readFileSync(env.TGSAFETY_PUBLIC_KEY))
const stopping = { done: false }
process.on('SIGTERM', () => {
    stopping.done = true
    setTimeout(() => process.exit(0), 3000).unref() // give the clients a moment to close
})
const strangers = env.TGSAFETY_USERNAMES.split(',').filter(Boolean)
const n = env.TGSAFETY_ACCOUNTS.split(',').length
await Promise.all(Array.from({ length: n }, (_, i) => drive(i + 1, strangers, stopping)))
process.exit(0)
