// Opens the -mode status -html page in headless Chromium (puppeteer-core, which downloads no
// browser) and prints what a person would see as JSON, for tests/lambda_src/test_status_html.py.
// Usage: node status_html_browser.mjs CHROMIUM PAGE.html USER_DATA_DIR
import { pathToFileURL } from "node:url";
import puppeteer from "puppeteer-core";

const [chromium, page_path, user_data_dir] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir: user_data_dir,
  args: [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const seen = { console: [], page_errors: [], failed_requests: [], dialogs: [] };
try {
  const page = await browser.newPage();
  page.on("console", (message) => seen.console.push({ type: message.type(), text: message.text() }));
  page.on("pageerror", (error) => seen.page_errors.push(String(error)));
  page.on("requestfailed", (request) => seen.failed_requests.push(request.url().slice(0, 80)));
  page.on("dialog", async (dialog) => {
    seen.dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  await page.goto(pathToFileURL(page_path).href, { waitUntil: "load", timeout: 30000 });
  const view = await page.evaluate(async () => {
    const images = [...document.querySelectorAll("img")];
    // decode() settles once each image is decoded or has failed to.
    await Promise.all(images.map((img) => img.decode().catch(() => null)));
    return {
      title: document.title,
      counts: Object.fromEntries(
        [...document.querySelectorAll("#counts [data-status]")].map((el) => [
          el.dataset.status,
          el.querySelector("b").innerText,
        ]),
      ),
      running: document.querySelector("#running")?.innerText,
      groups: [...document.querySelectorAll("#failures .group h3")].map((h) => h.innerText),
      keys: [...document.querySelectorAll(".key")].map((el) => el.innerText),
      images: images.map((img) => ({
        alt: img.alt,
        complete: img.complete,
        natural_width: img.naturalWidth,
        shown_width: img.getBoundingClientRect().width,
      })),
      placeholders: [...document.querySelectorAll(".none")].map((el) => el.innerText),
      total: document.querySelector("#total")?.innerText,
      scripts: document.querySelectorAll("script").length,
      body_text: document.body.innerText,
    };
  });
  seen.view = view;
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(seen) + "\n");
