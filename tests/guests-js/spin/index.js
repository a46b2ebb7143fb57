// user-info loops forever: the host's deadline must stop it (CallError::Timeout).
import { defineConnector } from "@connector-host/sdk";

export default defineConnector({
  authType: "api-key",
  basicAuth: () => ({ tag: "bearer" }),
  userInfo() {
    let spins = 0;
    for (;;) spins = (spins + 1) | 0;
  },
});
