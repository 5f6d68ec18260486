#!/usr/bin/env python3
"""Commands for lua-ir.sh: N calls of one of portcullis-redis's scripts, as RESP.

    gen.py rotation N   N chained refresh rotations of one family (each rotates the token the
                        previous one issued), as RedisGrantStore sends them on a single node
    gen.py limiter N    N GCRA decisions over 1024 keys, as RedisRateLimitStore sends them

The rotation's fixed arguments follow the layout at the top of rotate_refresh.lua.
"""
import hashlib
import sys
import time
from pathlib import Path

LUA = Path(__file__).resolve().parents[2] / "crates/portcullis-redis/src/lua"


def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def h(s):
    return hashlib.sha256(s.encode()).hexdigest()


def script(*parts):
    # as grant.rs assembles it: the prelude, the helpers, the body, joined by '\n'
    return "\n".join((LUA / p).read_text() for p in parts)


def rotation(n, w):
    src = script("grant_prelude.lua", "grant_redeem.lua", "rotate_refresh.lua")
    sha = hashlib.sha1(src.encode()).hexdigest()
    w(resp("SCRIPT", "LOAD", src))
    now, p, f = int(time.time() * 1e6), "lx", h("family")[:32]
    day = 86_400 * 10**6
    w(resp("SET", f"{p}:{{{f}}}:f",
           '{"u":"bench-user","c":"bench-client","s":"read write","r":"[]",'
           f'"ca":"{now}","ex":"{now + 30 * day}"}}', "PX", "600000"))
    w(resp("SADD", f"{p}:{{{f}}}:t", "c:" + h("code")))
    w(resp("PEXPIRE", f"{p}:{{{f}}}:t", "600000"))
    cur = h("r0")
    w(resp("SET", f"{p}:r:{{{cur}}}",
           f'{{"f":"{f}","k":"r","g":"1","p":"{h("code")}","ia":"{now}","ea":"{now + 14 * day}"}}',
           "PX", "600000"))
    for i in range(n):
        succ, acc = h(f"r{i + 1}"), h(f"a{i}")
        fixed = "0000v" + succ + acc + "%016d%016d%016d" % (0, 14 * day, 3600 * 10**6) + "001000000000"
        w(resp("EVALSHA", sha, "3", f"{p}:r:{{{cur}}}", f"{p}:r:{{{succ}}}", f"{p}:a:{{{acc}}}",
               p, "", "1", "", "bench-client", fixed, cur))
        cur = succ


def limiter(n, w):
    src = (LUA / "ratelimit.lua").read_text()
    sha = hashlib.sha1(src.encode()).hexdigest()
    w(resp("SCRIPT", "LOAD", src))
    for i in range(n):
        key = "lx:rl:{lx}:gcra:ip:198.51.%d.%d" % ((i % 1024) // 256, i % 256)
        w(resp("EVALSHA", sha, "1", key, "", "1", "1", "0", "60000000", "1000000", "1000000", "60"))


if __name__ == "__main__":
    {"rotation": rotation, "limiter": limiter}[sys.argv[1]](int(sys.argv[2]), sys.stdout.buffer.write)
