// "Try it out" on the server's /docs page in headless Chromium (Debian's, driven by
// playwright-core from npm), as a user does it: first without a key, then after entering
// one under "Authorize". Prints {"without_key": STATUS, "with_key": STATUS, "body": ...}
// for GET /v2/models/{name} (model metadata, which needs a key once keys exist).
//
// usage: NODE_PATH=.tools/node/node_modules node docs_try_it_out.cjs BASE_URL API_KEY MODEL
// (CHROMIUM: the browser's path, default /usr/bin/chromium). CommonJS, so NODE_PATH finds
// playwright-core where `cargo xtask test` installed it.

const { chromium } = require("playwright-core");

async function main() {
const [base, key, model] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  await page.goto(`${base}/docs`);
  const op = page.locator("#operations-default-get_v2_models__name_");
  await op.locator(".opblock-summary").first().click();

  async function execute() {
    const tryIt = op.locator("button.try-out__btn");
    if ((await tryIt.textContent()).includes("Try it out")) {
      await tryIt.click();
    }
    await op.locator('input[placeholder="name"]').fill(model);
    await op.locator("button.execute").click();
    const status = op.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor({ timeout: 15000 });
    const code = Number((await status.textContent()).trim());
    const body = await op.locator(".live-responses-table .response-col_description pre").first().textContent();
    // Clear for the next run.
    await op.locator("button.btn-clear").click();
    return { code, body };
  }

  const without = await execute();
  await page.locator("button.authorize").first().click();
  const dialog = page.locator(".modal-ux");
  await dialog.locator('input[type="text"], input[type="password"]').first().fill(key);
  await dialog.locator("button.authorize").click();
  await dialog.locator("button.close-modal").click();
  const withKey = await execute();
  console.log(JSON.stringify({ without_key: without.code, with_key: withKey.code, body: withKey.body }));
} finally {
  await browser.close();
}
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
