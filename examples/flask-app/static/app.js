// Adds items through the JSON API without reloading the page.
'use strict';
const form = document.getElementById('add-item');
const list = document.getElementById('items');
if (form && list) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const name = new FormData(form).get('name');
    const res = await fetch('/api/items', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ name }),
    });
    if (!res.ok) return;
    const item = await res.json();
    const li = document.createElement('li');
    li.textContent = item.name; // textContent: a name is never HTML
    list.append(li);
    form.reset();
  });
}
