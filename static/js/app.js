// Small progressive enhancements; the app works without JavaScript apart from htmx partials.
document.addEventListener("htmx:responseError", (event) => {
  const box = document.querySelector(".messages") || document.createElement("ul");
  box.className = "messages";
  const item = document.createElement("li");
  item.className = "msg msg-error";
  item.textContent = `The server refused the request (${event.detail.xhr.status}). ${event.detail.xhr.responseText.slice(0, 200)}`;
  box.appendChild(item);
  document.querySelector("main.page").prepend(box);
});

// A plain form with data-confirm asks before it is submitted (e.g. revoking an API token).
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
  }
});

// A button with data-copy="<selector>" copies that element's text to the clipboard.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  const source = button && document.querySelector(button.dataset.copy);
  if (!source) {
    return;
  }
  try {
    await navigator.clipboard.writeText(source.textContent.trim());
    button.textContent = "Copied";
  } catch (error) {
    button.textContent = "Copy failed: select the text and copy it";
  }
});
