// Parse PromQL expressions with Prometheus's own Lezer grammar (the one its web UI uses).
// stdin: a JSON array of strings; stdout: a JSON array, per expression null (parsed) or
// the first error's offset and the text around it.
import { parser } from '@prometheus-io/lezer-promql'

let input = ''
for await (const chunk of process.stdin) input += chunk
const results = JSON.parse(input).map((expr) => {
  const tree = parser.parse(expr)
  let error = null
  tree.iterate({
    enter(node) {
      if (error === null && node.type.isError) {
        error = { at: node.from, near: expr.slice(Math.max(0, node.from - 20), node.to + 20) }
      }
    },
  })
  return error
})
process.stdout.write(JSON.stringify(results))
