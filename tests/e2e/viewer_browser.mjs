// Opens the deep-zoom page (local_aws/viewer.py) and Mirador in headless Chromium with
// puppeteer-core (which downloads no browser) and prints what happened as JSON, for
// tests/e2e/test_viewer_browser.py.
// Usage: node viewer_browser.mjs CHROMIUM INDEX_URL MIRADOR_URL USER_DATA_DIR
import puppeteer from "puppeteer-core";

const [chromium, index_url, mirador_url, user_data_dir] = process.argv.slice(2);
const TIMEOUT = 90000;
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
    "--window-size=1200,900",
  ],
});

// Every response, failed request, page error and console error of one page.
function watch(page) {
  const seen = { responses: [], failed_requests: [], page_errors: [], console_errors: [] };
  page.on("response", (response) =>
    seen.responses.push({ url: response.url(), status: response.status(),
                          content_type: response.headers()["content-type"] || null,
                          cors: response.headers()["access-control-allow-origin"] || null }));
  page.on("requestfailed", (request) =>
    seen.failed_requests.push({ url: request.url(), error: request.failure()?.errorText }));
  page.on("pageerror", (error) => seen.page_errors.push(String(error)));
  page.on("console", (message) => {
    if (message.type() === "error") seen.console_errors.push(message.text());
  });
  return seen;
}

const result = {};
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 900 });
  const index = watch(page);
  result.index = index;
  await page.goto(index_url, { waitUntil: "load", timeout: TIMEOUT });
  // Every viewer opened (or failed to) and drew the tiles it needs for the whole image.
  await page.waitForFunction(
    () => window.deepZoom && window.deepZoom.length > 0 &&
      window.deepZoom.every((s) => s.openFailed || (s.opened && s.drawn())),
    { timeout: TIMEOUT, polling: 200 },
  );
  index.before_zoom = await page.evaluate(() => window.deepZoom.map((s) => s.tilesLoaded));
  // Zoom the widest image all the way in: the full-resolution tiles of its centre.
  index.zoomed = await page.evaluate(() => {
    const widths = window.deepZoom.map((s) => s.viewer.world.getItemAt(0)?.source.width || 0);
    const widest = widths.indexOf(Math.max(...widths));
    const viewport = window.deepZoom[widest].viewer.viewport;
    viewport.zoomTo(viewport.getMaxZoom(), null, true);
    return widest;
  });
  await page.waitForFunction(
    (zoomed, before) =>
      window.deepZoom[zoomed].tilesLoaded > before && window.deepZoom[zoomed].drawn(),
    { timeout: TIMEOUT, polling: 200 },
    index.zoomed,
    index.before_zoom[index.zoomed],
  );
  index.states = await page.evaluate(() =>
    window.deepZoom.map(({ viewer, drawn, ...state }) => ({ ...state, drawn: drawn() })));
  index.status_lines = await page.evaluate(() =>
    [...document.querySelectorAll("[id$=-status]")].map((element) => element.innerText));

  const mirador_page = await browser.newPage();
  await mirador_page.setViewport({ width: 1200, height: 900 });
  const mirador = watch(mirador_page);
  result.mirador = mirador;
  await mirador_page.goto(mirador_url, { waitUntil: "load", timeout: TIMEOUT });
  // Mirador draws the canvas with OpenSeadragon: wait for its drawing surface and a tile.
  await mirador_page.waitForFunction(
    () => document.querySelector(".openseadragon-canvas canvas") !== null,
    { timeout: TIMEOUT, polling: 200 },
  );
  await mirador_page.waitForNetworkIdle({ idleTime: 1000, timeout: TIMEOUT });
  mirador.view = await mirador_page.evaluate(() => {
    const canvas = document.querySelector(".openseadragon-canvas canvas");
    return {
      canvas: canvas ? { width: canvas.width, height: canvas.height } : null,
      body_text: document.body.innerText,
      window_titles: [...document.querySelectorAll("h2, [class*=window-title]")]
        .map((element) => element.innerText).filter((text) => text),
    };
  });
} catch (error) {
  result.error = String(error);
  // What the page shows, to tell a slow tile from a broken viewer.
  for (const page of await browser.pages()) {
    const state = await page.evaluate(() => ({
      url: location.href,
      deep_zoom: (window.deepZoom || []).map(({ viewer, drawn, ...state }) => ({ ...state, drawn: drawn() })),
      body_text: document.body ? document.body.innerText.slice(0, 2000) : null,
    })).catch((e) => String(e));
    (result.pages ||= []).push(state);
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(result) + "\n");
