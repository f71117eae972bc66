// The live catalog: reads from this service, commands to the command service, changes over
// the WebSocket. No build step; plain ES modules.
const $ = (id) => document.getElementById(id);
const state = { config: null, token: null, versions: new Map(), products: new Map(), ws: null };

async function init() {
  state.config = await (await fetch("/config.json")).json();
  state.token = sessionStorage.getItem("tandem-token");
  if (!state.token && state.config.development) {
    const response = await fetch("/dev/token", { method: "POST" });
    if (response.ok) state.token = (await response.json()).access_token;
  }
  if (!state.token) $("token-box").hidden = false;
  $("token-save").onclick = () => {
    state.token = $("token-input").value.trim();
    sessionStorage.setItem("tandem-token", state.token);
    connect();
  };
  $("search-form").onsubmit = (e) => { e.preventDefault(); search(); };
  $("create-form").onsubmit = (e) => { e.preventDefault(); createProduct(); };
  $("price-form").onsubmit = (e) => { e.preventDefault(); changePrice(); };
  await search();
  connect();
}

function authHeaders() {
  return state.token ? { Authorization: `Bearer ${state.token}` } : {};
}

async function search() {
  const params = new URLSearchParams({ page_size: "50", sort: $("sort").value });
  if ($("q").value.trim()) params.set("q", $("q").value.trim());
  if ($("category-filter").value.trim()) params.set("category", $("category-filter").value.trim());
  const response = await fetch(`/api/products/search?${params}`, { headers: authHeaders() });
  if (!response.ok) return say(`search failed: ${response.status}`);
  const page = await response.json();
  state.products.clear();
  $("products").replaceChildren();
  for (const product of page.items) upsert(product, false);
  $("summary").textContent = `${page.total} product(s)`;
  refreshPriceSelect();
}

function upsert(product, highlight) {
  const known = state.versions.get(product.id) || 0;
  if (product.version < known) return; // never go back in time (a late snapshot or read)
  state.versions.set(product.id, product.version);
  state.products.set(product.id, product);
  let row = document.querySelector(`tr[data-id="${CSS.escape(product.id)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.id = product.id;
    $("products").prepend(row);
  }
  row.dataset.version = String(product.version);
  row.className = product.status === "discontinued" ? "discontinued" : "";
  row.replaceChildren(
    ...[product.name, product.category, Number(product.price).toFixed(2), product.status,
        product.version].map((text, i) => {
      const cell = document.createElement("td");
      cell.textContent = String(text);
      cell.className = ["name", "category", "price", "status", "version"][i];
      return cell;
    }),
  );
  if (highlight) { void row.offsetWidth; row.classList.add("flash"); }
  refreshPriceSelect();
}

function refreshPriceSelect() {
  const select = $("price-product");
  const current = select.value;
  select.replaceChildren(...[...state.products.values()].map((p) => new Option(p.name, p.id)));
  if (current) select.value = current;
}

async function fetchProduct(id, minVersion) {
  const url = `/api/products/${encodeURIComponent(id)}?min_version=${minVersion}`;
  const response = await fetch(url, { headers: authHeaders() });
  return response.ok ? response.json() : null;
}

function connect() {
  if (state.ws) state.ws.close();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/products`);
  state.ws = ws;
  ws.onopen = () => {
    // Authenticate first (no token in the URL); pass the versions we hold so the server sends
    // the current state of whatever changed while we were away.
    ws.send(JSON.stringify({ type: "auth", token: state.token,
                             versions: Object.fromEntries(state.versions) }));
  };
  ws.onmessage = async (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "subscribed") setStatus("live", "live");
    else if (message.type === "change") await onChange(message);
    else if (message.type === "snapshot" && message.document) upsert(message.document, true);
    else if (message.type === "resync_required") ws.send(JSON.stringify(
      { type: "resync", versions: Object.fromEntries(state.versions) }));
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    setStatus("error", `disconnected (${event.code}); retrying`);
    setTimeout(connect, event.code === 1008 ? 5000 : 1000);
  };
}

async function onChange(change) {
  const item = document.createElement("li");
  item.textContent = `${change.event_type} ${change.id.slice(0, 8)} v${change.version}`;
  $("feed").prepend(item);
  if (change.version <= (state.versions.get(change.id) || 0)) return;
  // Fetch the full state at (at least) this version: covers gaps and partial change sets.
  const product = await fetchProduct(change.id, change.version);
  if (product) upsert(product, true);
}

async function command(path, body) {
  const response = await fetch(`${state.config.command_service_url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: JSON.stringify(body),
  });
  const payload = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(payload?.error?.message || `HTTP ${response.status}`);
  return payload;
}

async function createProduct() {
  try {
    const created = await command("/api/products", {
      name: $("create-name").value, description: $("create-description").value,
      price: Number($("create-price").value), category: $("create-category").value,
    });
    say(`created ${created.id} (v${created.version})`);
    $("create-form").reset();
    const product = await fetchProduct(created.id, created.version); // read your write
    if (product) upsert(product, true);
  } catch (error) { say(`create failed: ${error.message}`); }
}

async function changePrice() {
  const id = $("price-product").value;
  try {
    const changed = await command(`/api/products/${encodeURIComponent(id)}/price`,
                                  { price: Number($("price-value").value) });
    say(`price changed (v${changed.version})`);
  } catch (error) { say(`price change failed: ${error.message}`); }
}

function setStatus(stateName, text) {
  $("ws-status").dataset.state = stateName;
  $("ws-status").textContent = text;
}
function say(text) { $("message").textContent = text; }

init().catch((error) => say(`failed to start: ${error.message}`));
