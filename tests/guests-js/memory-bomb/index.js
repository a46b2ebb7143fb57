// user-info allocates 1 MiB buffers and keeps them all: the host's memory cap
// must stop it (CallError::OutOfMemory), not the machine.
import { defineConnector } from "@connector-host/sdk";

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo() {
    const hoard = [];
    for (;;) hoard.push(new Uint8Array(1 << 20).fill(0xa5));
  },
});
