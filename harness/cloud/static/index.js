"use strict";
/* Home page: the list of projects, each linking to its Cloud Devices view. */
document.addEventListener("DOMContentLoaded", async () => {
  const list = document.getElementById("projects");
  try {
    const projects = sortByName((await api("GET", "/projects")) || []);
    for (const p of projects) {
      list.append(el("li", { "data-project-id": p.id },
        el("a", { href: "/projects/" + encodeURIComponent(p.id) }, p.name)));
    }
    document.getElementById("no-projects").hidden = projects.length > 0;
  } catch (err) {
    showMessage(document.getElementById("error"), "error", err.message);
  }
});
