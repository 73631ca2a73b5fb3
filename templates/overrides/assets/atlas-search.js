/*
 * VGG16 Atlas search worker: a drop-in replacement for Material for MkDocs' search worker
 * (templates/overrides/main.html points Material's search UI here).
 *
 * Material's UI fetches search/search_index.json, written by its search plugin, posts it to
 * this worker ({type: SETUP}), and then posts each query ({type: QUERY}); the worker answers
 * with Material's result format ({type: RESULT, data: {items: [[article, ...sections]]}}).
 *
 * Ranking, best first, so that the expected page is the first result:
 *   1. the query equals a page title, ignoring case and punctuation ("tiger",
 *      "jack-o'-lantern", "block4_conv2 17" for the page "block4_conv2 #17");
 *   2. query words found whole in the title, then as the start of a title word;
 *   3. query words found in the text (a WordNet id such as n01601694, a synonym, a definition).
 * Every query word must be found somewhere. Ties: whole pages before sections, shorter titles
 * first, then site order.
 *
 * Filter pages are not in the index (4,224 of them, drawn or not): a query naming a conv layer and
 * a filter index ("block4_conv2 17", "block4_conv2 #17", "block4_conv2/17") is resolved here to
 * that filter's page, which every filter has, and comes first.
 */
"use strict"

const SETUP = 0, READY = 1, QUERY = 2, RESULT = 3  // Material's SearchMessageType

const POINTS = { exactTitle: 100, titleWord: 10, titlePrefix: 5, textWord: 2, textPrefix: 1 }
const ENTITIES = { amp: "&", lt: "<", gt: ">", quot: "\"", apos: "'", nbsp: " " }

const LAYER_FILTERS = {  // VGG16's conv layers and their filter counts (generator/architecture.py)
  block1_conv1: 64, block1_conv2: 64, block2_conv1: 128, block2_conv2: 128,
  block3_conv1: 256, block3_conv2: 256, block3_conv3: 256,
  block4_conv1: 512, block4_conv2: 512, block4_conv3: 512,
  block5_conv1: 512, block5_conv2: 512, block5_conv3: 512
}
const FILTER_QUERY = /^\s*(block[1-5]_conv[1-3])\s*[\s\/#]\s*#?\s*(\d+)\s*$/i

let pages = []                 // one entry per search document, in site order
let articles = new Map()       // page location -> its whole-page document

/** Text of an HTML fragment: tags dropped, character references decoded. */
function plainText(html) {
  return html
    .replace(/<[^>]*>/g, " ")
    .replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (match, name) => {
      if (name[0] !== "#")
        return ENTITIES[name.toLowerCase()] ?? match
      const hex = name[1] === "x" || name[1] === "X"
      return String.fromCodePoint(parseInt(name.slice(hex ? 2 : 1), hex ? 16 : 10))
    })
}

/** Lower-case words without accents; "_" stays inside words ("block4_conv2"). */
function words(html) {
  return plainText(html)
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .match(/[a-z0-9_]+/g) || []
}

function hasPrefix(set, prefix) {
  for (const word of set)
    if (word.startsWith(prefix))
      return true
  return false
}

function setup(docs) {
  articles = new Map()
  pages = docs.map((doc, order) => {
    const title = words(doc.title)
    const article = !doc.location.includes("#")
    if (article && !articles.has(doc.location))
      articles.set(doc.location, doc)
    return {
      doc, order, article,
      titleKey: title.join(" "),
      titleLength: title.length,
      titleWords: new Set(title),
      textWords: new Set(words(doc.text || ""))
    }
  })
}

/** Points of one page for the query words, or 0 when a word is missing. */
function score(page, terms, key) {
  let total = page.titleKey === key ? POINTS.exactTitle : 0
  for (const term of terms) {
    if (page.titleWords.has(term))
      total += POINTS.titleWord
    else if (hasPrefix(page.titleWords, term))
      total += POINTS.titlePrefix
    else if (page.textWords.has(term))
      total += POINTS.textWord
    else if (hasPrefix(page.textWords, term))
      total += POINTS.textPrefix
    else
      return 0
  }
  return total
}

/** The document of the filter page a query names ("block4_conv2 17"), or null. */
function filterDocument(query) {
  const match = FILTER_QUERY.exec(query)
  if (!match)
    return null
  const layer = match[1].toLowerCase(), index = parseInt(match[2], 10)
  if (!(layer in LAYER_FILTERS) || index >= LAYER_FILTERS[layer])
    return null
  return {
    location: `vgg16/${layer}/${index}/`,
    title: `${layer} #${index}`,
    text: `Filter ${index} of ${LAYER_FILTERS[layer]} in layer ${layer} of VGG16.`
  }
}

/** Results grouped by page, best page first; a named filter's page leads. */
function search(query) {
  const groups = searchIndex(query)
  const filter = filterDocument(query)
  if (!filter)
    return groups
  const matched = Object.fromEntries(words(query).map(term => [term, true]))
  const rest = groups.filter(items => items[0].location.split("#")[0] !== filter.location)
  return [[{ ...filter, score: POINTS.exactTitle, terms: matched }], ...rest]
}

/** Results of the index grouped by page, best page first; every group holds its whole-page document. */
function searchIndex(query) {
  const terms = [...new Set(words(query))]
  if (!terms.length)
    return []
  const key = words(query).join(" ")
  const found = []
  for (const page of pages) {
    const points = score(page, terms, key)
    if (points > 0)
      found.push({ page, points })
  }
  found.sort((a, b) =>
    b.points - a.points ||
    Number(b.page.article) - Number(a.page.article) ||
    a.page.titleLength - b.page.titleLength ||
    a.page.order - b.page.order)

  const matched = Object.fromEntries(terms.map(term => [term, true]))
  const groups = new Map()
  for (const { page, points } of found) {
    const location = page.doc.location.split("#")[0]
    if (!groups.has(location))
      groups.set(location, [])
    groups.get(location).push({ ...page.doc, score: points, terms: matched })
  }
  for (const [location, items] of groups)
    if (!items.some(item => item.location === location) && articles.has(location))
      items.push({ ...articles.get(location), score: 0, terms: matched })
  return [...groups.values()]
}

addEventListener("message", ({ data: message }) => {
  if (message.type === SETUP) {
    setup(message.data.docs)
    postMessage({ type: READY })
  } else if (message.type === QUERY) {
    postMessage({ type: RESULT, data: { items: search(message.data) } })
  }
})
