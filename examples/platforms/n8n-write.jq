# The body of n8n's PUT /api/v1/workflows/<id>: only the fields it accepts.
{
  name,
  nodes,
  connections,
  # n8n refuses settings with null values.
  settings: ((.settings // {}) | with_entries(select(.value != null)))
}
# staticData is optional: sent only when the workflow has some.
+ (if .staticData != null then {staticData} else {} end)
