"use strict";
/* Human-readable rendering of the control API's OpenAPI schema. */
function schemaFields(schema) {
  const props = (schema && schema.properties) || {};
  return Object.entries(props).map(([name, s]) => name + (s && s.type ? ": " + s.type : "")).join(", ");
}

document.addEventListener("DOMContentLoaded", async () => {
  const box = document.getElementById("endpoints");
  try {
    const response = await fetch("/_bench/openapi.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status + " for /_bench/openapi.json");
    const spec = await response.json();
    const servers = (spec.servers && spec.servers[0] && spec.servers[0].url) || "";
    const table = el("table", { class: "assets" }, el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Method"), el("th", { scope: "col" }, "Path"),
      el("th", { scope: "col" }, "What it does"), el("th", { scope: "col" }, "Body"))));
    const body = el("tbody", {});
    for (const [path, ops] of Object.entries(spec.paths || {})) {
      for (const [method, op] of Object.entries(ops)) {
        if (typeof op !== "object" || !op.summary && !op.responses) continue;
        const schema = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
        body.append(el("tr", { "data-endpoint": method.toUpperCase() + " " + servers + path },
          el("td", { class: "mono" }, method.toUpperCase()), el("td", { class: "mono" }, servers + path),
          el("td", {}, op.summary || ""), el("td", { class: "mono" }, schema ? schemaFields(schema.schema) : "–")));
      }
    }
    table.append(body);
    box.replaceChildren(table);
  } catch (err) {
    showMessage(document.getElementById("error"), "error", "Could not load the schema: " + err.message);
  }
});
