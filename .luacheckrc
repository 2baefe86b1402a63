-- luacheck for the Neovim plugin and its headless tests (.ci/lint.sh). Neovim's Lua is LuaJIT.
std = 'luajit'
globals = { 'vim' }  -- Neovim's API table (assigning vim.g / vim.b fields is ordinary plugin code)
max_line_length = 120 -- as stylua.toml's column_width
exclude_files = { 'editors/vscode/node_modules/' }
