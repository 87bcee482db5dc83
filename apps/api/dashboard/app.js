// Entry: log in with an API key (kept in this tab's sessionStorage only, sent as
// `Authorization: Bearer` to /graphql and in graphql-ws' connection_init), ask the API who
// the key is (`me`), then show the view of its role. Each view fetches only what its role
// may read.
import { makeApi } from "./api.js";
import { h, fill } from "./ui.js";
import { adminView } from "./admin.js";
import { tenantView } from "./tenant.js";
import { financeView } from "./finance.js";

const KEY = "lite.apiKey";
const root = document.getElementById("root");
const who = document.getElementById("who");
let stopView = () => {};
let api;

const VIEWS = { ADMIN: adminView, TENANT: tenantView, FINANCE: financeView };

function logout() {
  stopView();
  stopView = () => {};
  api?.close();
  api = undefined;
  sessionStorage.removeItem(KEY);
  fill(who);
  showLogin();
}

function showLogin(message) {
  const input = h("input", {
    type: "password",
    id: "api-key",
    name: "api-key",
    autocomplete: "off",
    required: true,
    placeholder: "API key",
  });
  const form = h(
    "form",
    { class: "login" },
    h("h2", {}, "Log in"),
    h("p", { class: "note" }, "Paste an API key (ADMIN, TENANT or FINANCE). It is kept in this tab only."),
    h("div", { class: "row" }, input, h("button", { type: "submit" }, "Log in")),
    message ? h("p", { class: "error", role: "alert" }, message) : null,
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void start(input.value.trim());
  });
  fill(root, h("section", {}, form));
  input.focus();
}

async function start(key) {
  if (!key) return showLogin();
  api = makeApi(key);
  let me;
  try {
    me = (await api.gql("{ me { role apiKeyId tenant { id name } } }")).me;
  } catch (e) {
    api.close();
    api = undefined;
    sessionStorage.removeItem(KEY);
    const msg = e.code === "UNAUTHENTICATED" ? "That key is not valid." : e.message;
    return showLogin(msg);
  }
  sessionStorage.setItem(KEY, key);
  fill(
    who,
    h("span", { "data-testid": "role" }, me.role),
    me.tenant ? h("span", { "data-testid": "tenant-name" }, `${me.tenant.name} (${me.tenant.id})`) : null,
    h("button", { class: "plain", type: "button", onclick: logout }, "Log out"),
  );
  fill(root);
  stopView = VIEWS[me.role](root, api, me) ?? (() => {});
}

const saved = sessionStorage.getItem(KEY);
if (saved) void start(saved);
else showLogin();
