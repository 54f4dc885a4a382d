#!/usr/bin/python3
"""A careful Telethon program, audited by `scenario-run audit` (docs/audit.md).

    scenario-run audit --for 50s -- /usr/bin/python3 docs/examples/audit-telethon.py

It drives every account the audit gives it (TGSAFETY_ACCOUNTS and the
TGSAFETY_ACCOUNT_<n>_* variables) the way a safe program does:

- FLOOD_WAIT: waits the seconds Telegram asked, plus a margin, then retries;
- PEER_FLOOD: writes to no more strangers (the account is limited);
- FROZEN_METHOD_INVALID: writes nothing more (the account is frozen);
- USER_DEACTIVATED_BAN, SESSION_REVOKED, AUTH_KEY_UNREGISTERED: stops using
  the account for good.

Between those it reads now and then, as a program waiting for work does,
until the audit stops it (SIGTERM after --for). It only ever dials the
address in its sessions, which the audit points at its simulated Telegram.
"""

import asyncio
import os
import signal

from telethon import TelegramClient, errors, functions, types
from telethon.sessions import StringSession

STOP = (errors.UserDeactivatedBanError, errors.AuthKeyUnregisteredError,
        errors.SessionRevokedError, errors.UserDeactivatedError)


class Stopped(Exception):
    """The account is over (banned, session gone): stop using it."""


def log(acct, msg):
    print(f"{acct}: {msg}", flush=True)


async def careful(acct, what, fn, state):
    """Runs one request the careful way; returns its result or None."""
    while True:
        try:
            return await fn()
        except errors.FloodWaitError as e:
            log(acct, f"{what}: FLOOD_WAIT, waiting {e.seconds} s")
            await asyncio.sleep(e.seconds + 0.5)
        except errors.PeerFloodError:
            log(acct, f"{what}: PEER_FLOOD, no more messages to strangers")
            state["limited"] = True
            return None
        except STOP as e:
            log(acct, f"{what}: {type(e).__name__}; stopping this account")
            raise Stopped() from e
        except errors.RPCError as e:
            if "FROZEN_METHOD_INVALID" in str(e.message):
                log(acct, f"{what}: frozen, no more writes")
                state["frozen"] = True
                return None
            log(acct, f"{what}: {e.message}")
            return None


async def drive(n, strangers):
    p = f"TGSAFETY_ACCOUNT_{n}_"
    acct = os.environ[p + "NAME"]
    contacts = [c for c in os.environ.get(p + "CONTACTS", "").split(",") if c]
    # The audit's ready session: dc, address and auth key of the simulated
    # Telegram. Any api_id/api_hash works there.
    client = TelegramClient(StringSession(os.environ[p + "TELETHON_SESSION"]),
                            int(os.environ["TGSAFETY_APP_ID"]), os.environ["TGSAFETY_APP_HASH"],
                            flood_sleep_threshold=0)  # every FLOOD_WAIT reaches careful()
    state = {"limited": False, "frozen": False}
    await client.connect()
    me = functions.users.GetUsersRequest([types.InputUserSelf()])  # get_me() would hide a 401
    try:
        # Start-up: a few lookups, spaced out (no resolve burst).
        users = []
        for name in strangers[:6]:
            u = await careful(acct, "resolve", lambda: client.get_input_entity(name), state)
            if u is not None:
                users.append(u)
            await asyncio.sleep(0.2)
        friends = []
        for name in contacts[:2]:
            u = await careful(acct, "resolve a contact", lambda: client.get_input_entity(name), state)
            if u is not None:
                friends.append(u)
        # Work: a message every few seconds (to strangers until PEER_FLOOD,
        # then to contacts only; nothing once frozen), reads in between,
        # until the audit stops the program.
        tick = 0
        while True:
            if tick % 3 == 0 and not state["frozen"]:
                if not state["limited"] and users:
                    u = users.pop(0)
                    await careful(acct, "message a stranger", lambda: client.send_message(u, "hello"), state)
                elif friends:
                    f = friends[tick % len(friends)]
                    await careful(acct, "message a contact", lambda: client.send_message(f, "hi"), state)
            elif tick % 2:
                await careful(acct, "read", lambda: client(me), state)
            else:
                await careful(acct, "read", lambda: client(functions.help.GetConfigRequest()), state)
            tick += 1
            await asyncio.sleep(2)
    except Stopped:
        pass
    finally:
        await client.disconnect()
    log(acct, "stopped")


async def main():
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    strangers = [u for u in os.environ["TGSAFETY_USERNAMES"].split(",") if u]
    n = len(os.environ["TGSAFETY_ACCOUNTS"].split(","))
    tasks = [asyncio.create_task(drive(i, strangers)) for i in range(1, n + 1)]
    everything = asyncio.ensure_future(asyncio.gather(*tasks, return_exceptions=True))
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait([everything, waiter], return_when=asyncio.FIRST_COMPLETED)
    # Stopped by the audit (or every account is over): disconnect cleanly.
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


asyncio.run(main())
