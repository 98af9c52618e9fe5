"""Drive report.html's review mode in Debian's chromium through Selenium and chromedriver (run by
tests/test_review_page.py inside ``unshare -rn``: no browser traffic can leave loopback).

    python tests/review_browser.py PAGE DOWNLOAD_DIR PROFILE_DIR [SCREENSHOT]

Clicks "split off" on the first track of the first identity, "same person" on the first question
about two identities left apart, reloads the page (the decisions must persist in localStorage),
clicks "Download corrections.json", waits for the file and prints, as one JSON line, what it
clicked and what the page showed.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def main(page: Path, downloads: Path, profile: Path, screenshot: Path | None) -> dict[str, object]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", "--window-size=1280,1600"):
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                           "download.prompt_for_download": False})
    driver = webdriver.Chrome(options=opts, service=Service("/usr/bin/chromedriver"))
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.get(page.as_uri())
        split = driver.find_element(By.CSS_SELECTOR, "tr.identity button[data-act='split']")
        clicked_split = {"track": split.get_attribute("data-track"), "gid": split.get_attribute("data-gid")}
        split.click()
        question = driver.find_element(By.CSS_SELECTOR, "li.question[data-kind='apart']")
        merge = [question.get_attribute("data-a"), question.get_attribute("data-b")]
        question.find_element(By.CSS_SELECTOR, "button[data-act='same']").click()
        answered = question.find_element(By.CSS_SELECTOR, ".answer").text
        driver.refresh()  # the decisions live in localStorage
        count = driver.find_element(By.ID, "review-count").text
        decisions = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#decisions li.decision")]
        if screenshot is not None:
            driver.execute_script("document.getElementById('review').scrollIntoView()")
            driver.save_screenshot(str(screenshot))
        driver.find_element(By.ID, "download").click()
        target = downloads / "corrections.json"
        for _ in range(200):
            if target.is_file() and target.stat().st_size > 0:
                break
            time.sleep(0.05)
        return {"split": clicked_split, "merge": merge, "answered": answered, "count": count,
                "decisions": decisions, "downloaded": target.is_file()}
    finally:
        driver.quit()


if __name__ == "__main__":
    shot = Path(sys.argv[4]) if len(sys.argv) > 4 else None
    print(json.dumps(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), shot)))
