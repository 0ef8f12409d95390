/**
 * Page models as Markdown and as HTML (one self-contained page each: its style inline, its
 * diagrams drawn by `mermaid.min.js` written next to it).
 *
 * @module
 */
import type { Block, Page } from "./_model.ts";

/** How inline text is written: code spans, links to pages, and the rest. */
export interface InlineStyle {
  code(text: string): string;
  link(text: string, page: string): string;
  plain(text: string): string;
}

/** Inline text in a style: `code` spans and `[text](page:NAME)` links; `\|` is a plain `|`. */
export function inline(text: string, style: InlineStyle): string {
  const out: string[] = [];
  const pattern = /`([^`]*)`|\[([^\]]+)\]\(page:([a-z0-9-]+)\)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    out.push(style.plain(text.slice(last, match.index).replace(/\\\|/g, "|")));
    if (match[1] !== undefined) out.push(style.code(match[1].replace(/\\\|/g, "|")));
    else out.push(style.link(match[2]!, match[3]!));
    last = match.index + match[0].length;
  }
  out.push(style.plain(text.slice(last).replace(/\\\|/g, "|")));
  return out.join("");
}

/** The file a page is written to in Markdown: the index is the folder's README.md. */
export function markdownFile(name: string): string {
  return name === "index" ? "README.md" : `${name}.md`;
}

/** Markdown blocks, without a title. */
export function markdownBlocks(blocks: Block[]): string {
  const md: InlineStyle = {
    code: (t) => `\`${t}\``,
    link: (t, page) => `[${t}](${markdownFile(page)})`,
    // "<config-dir>" is text, not an HTML tag.
    plain: (t) => t.replace(/</g, "\\<"),
  };
  // In a table cell, a "|" (in code too) is written "\|".
  const cell: InlineStyle = {
    code: (t) => md.code(t.replace(/\|/g, "\\|")),
    link: md.link,
    plain: (t) => md.plain(t).replace(/\|/g, "\\|"),
  };
  const cellText = (t: string) => inline(t, cell);
  const parts = blocks.map((b) => {
    switch (b.kind) {
      case "heading":
        return `${"#".repeat(b.level)} ${b.text}`;
      case "paragraph":
        return inline(b.text, md);
      case "list":
        return b.items.map((item) => `- ${inline(item, md)}`).join("\n");
      case "code":
        return `\`\`\`\n${b.text}\n\`\`\``;
      case "mermaid":
        return `\`\`\`mermaid\n${b.text}\n\`\`\`\n\n${b.caption}`;
      case "table":
        return [
          `| ${b.head.join(" | ")} |`,
          `| ${b.head.map(() => "---").join(" | ")} |`,
          ...b.rows.map((row) => `| ${row.map(cellText).join(" | ")} |`),
        ].join("\n");
    }
  });
  return `${parts.join("\n\n")}\n`;
}

/** A page in Markdown. */
export function markdownPage(page: Page): string {
  return `# ${page.title}\n\n${markdownBlocks(page.blocks)}`;
}

/** The file a page is written to in HTML. */
export function htmlFile(name: string): string {
  return `${name}.html`;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}

const STYLE = `
body { font: 15px/1.5 system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; color: #1d1d1f; }
nav { margin-bottom: 1rem; } nav a { margin-right: 1rem; }
table { border-collapse: collapse; margin: 1rem 0; } th, td { border: 1px solid #ccc; padding: .3rem .5rem; vertical-align: top; text-align: left; }
th { background: #f3f3f3; } code, pre { font: 13px/1.4 ui-monospace, monospace; } pre { background: #f6f6f6; padding: .6rem; overflow-x: auto; }
pre.mermaid { background: none; } figure { margin: 1rem 0; overflow-x: auto; } figcaption { color: #555; font-size: 13px; }
`.trim();

/** The name of the Mermaid renderer written next to the HTML pages. */
export const MERMAID_FILE = "mermaid.min.js";

/** A page in HTML: one file with its style; diagrams need `mermaid.min.js` beside it. */
export function htmlPage(page: Page): string {
  const html: InlineStyle = {
    code: (t) => `<code>${escapeHtml(t)}</code>`,
    link: (t, target) => `<a href="${htmlFile(target)}">${escapeHtml(t)}</a>`,
    plain: escapeHtml,
  };
  const body = page.blocks.map((b) => {
    switch (b.kind) {
      case "heading":
        return `<h${b.level}>${escapeHtml(b.text)}</h${b.level}>`;
      case "paragraph":
        return `<p>${inline(b.text, html)}</p>`;
      case "list":
        return `<ul>\n${b.items.map((i) => `<li>${inline(i, html)}</li>`).join("\n")}\n</ul>`;
      case "code":
        return `<pre><code>${escapeHtml(b.text)}</code></pre>`;
      case "mermaid":
        return `<figure>\n<pre class="mermaid">\n${escapeHtml(b.text)}\n</pre>\n<figcaption>${
          escapeHtml(b.caption)
        }</figcaption>\n</figure>`;
      case "table":
        return [
          "<table>",
          b.head.some(Boolean)
            ? `<tr>${b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join("")}</tr>`
            : "",
          ...b.rows.map((row) =>
            `<tr>${row.map((c) => `<td>${inline(c, html)}</td>`).join("")}</tr>`
          ),
          "</table>",
        ].filter(Boolean).join("\n");
    }
  });
  const diagrams = page.blocks.some((b) => b.kind === "mermaid");
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<title>${escapeHtml(page.title)}</title>`,
    `<style>\n${STYLE}\n</style>`,
    "</head>",
    "<body>",
    `<nav><a href="${htmlFile("index")}">Plugins</a><a href="${
      htmlFile("commands")
    }">Commands</a><a href="${htmlFile("vm-file")}">VM file</a></nav>`,
    `<h1>${escapeHtml(page.title)}</h1>`,
    ...body,
    ...(diagrams
      ? [
        `<script src="${MERMAID_FILE}"></script>`,
        '<script>mermaid.initialize({ startOnLoad: true, securityLevel: "strict", flowchart: { useMaxWidth: false } });</script>',
      ]
      : []),
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
